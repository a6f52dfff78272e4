//! Choosing ads for one request, from memory only.
//!
//! Candidates are the index's tiers, best first (priority, then expected revenue per
//! thousand). A candidate must pass, in order: its campaign's schedule, targeting and
//! consent, its campaign's budget, then the viewer's frequency caps. Within a tier the scan
//! starts at a random ad, so equal ads share traffic fairly. At most one ad per campaign.

use jiff::Timestamp;
use rand::Rng;
use serde::Serialize;
use utoipa::ToSchema;

use super::frequency::FrequencyCounter;
use super::snapshot::{AdEntry, CampaignEntry, Snapshot};
use crate::adserver::schedule;

/// Who is looking, and where. Strings are already normalized (trimmed, lowercase).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub viewer: Option<&'a str>,
    pub region: Option<&'a str>,
    pub communities: &'a [String],
    pub user_type: Option<&'a str>,
}

/// Why nothing was chosen: the furthest stage any candidate reached before it was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoAdReason {
    /// No campaign is running.
    NoRunningCampaigns,
    /// Running campaigns exist but none is inside its dates and daypart now.
    OutsideSchedule,
    /// None targets this region, community or user type.
    NoTargetingMatch,
    /// Those that match need a consent the viewer does not hold.
    ConsentMissing,
    /// Those that match have no budget left for this ad.
    BudgetExhausted,
    /// The viewer has seen (or clicked) every matching ad as often as allowed this hour.
    FrequencyCapped,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Unchecked,
    Eligible,
    Refused(NoAdReason),
}

/// Picks up to `max_ads` ads. Reserves a frequency slot for each ad it returns.
pub fn select<'s>(
    snapshot: &'s Snapshot,
    frequency: &FrequencyCounter,
    max_ads: usize,
    context: &Context<'_>,
    now: Timestamp,
    rng: &mut impl Rng,
) -> Result<Vec<&'s AdEntry>, NoAdReason> {
    let mut verdicts = vec![Verdict::Unchecked; snapshot.campaigns.len()];
    let mut local_hours: Vec<Option<u8>> = vec![None; snapshot.zones.len()];
    let consent = context.viewer.and_then(|viewer| snapshot.consent.get(viewer));
    let now_secs = now.as_second();
    let mut furthest = NoAdReason::NoRunningCampaigns;
    let mut picked: Vec<&AdEntry> = Vec::with_capacity(max_ads);

    for tier in &snapshot.tiers {
        let len = tier.ads.len();
        let start = rng.random_range(0..len);
        for ad in tier.ads[start..].iter().chain(&tier.ads[..start]) {
            if picked.iter().any(|p| p.campaign == ad.campaign) {
                continue;
            }
            let campaign = &snapshot.campaigns[ad.campaign];
            if verdicts[ad.campaign] == Verdict::Unchecked {
                let hour = *local_hours[campaign.zone]
                    .get_or_insert_with(|| schedule::local_hour(now, &snapshot.zones[campaign.zone]));
                verdicts[ad.campaign] = match check_campaign(campaign, context, consent, now, hour) {
                    Ok(()) => Verdict::Eligible,
                    Err(reason) => Verdict::Refused(reason),
                };
            }
            if let Verdict::Refused(reason) = verdicts[ad.campaign] {
                furthest = furthest.max(reason);
                continue;
            }
            if campaign.available < ad.prices.max() {
                furthest = furthest.max(NoAdReason::BudgetExhausted);
                continue;
            }
            if let Some(viewer) = context.viewer
                && !frequency.try_reserve(viewer, ad.id, campaign.caps, now_secs)
            {
                furthest = furthest.max(NoAdReason::FrequencyCapped);
                continue;
            }
            picked.push(ad);
            if picked.len() == max_ads {
                return Ok(picked);
            }
        }
    }
    if picked.is_empty() { Err(furthest) } else { Ok(picked) }
}

fn check_campaign(
    campaign: &CampaignEntry,
    context: &Context<'_>,
    consent: Option<&Vec<(alloy::primitives::B256, u64)>>,
    now: Timestamp,
    local_hour: u8,
) -> Result<(), NoAdReason> {
    if !campaign.schedule.is_live_at(now, local_hour) {
        return Err(NoAdReason::OutsideSchedule);
    }
    let matches = |targets: &[String], value: Option<&str>| {
        targets.is_empty() || value.is_some_and(|v| targets.iter().any(|t| t == v))
    };
    let community_match =
        campaign.communities.is_empty() || context.communities.iter().any(|c| campaign.communities.contains(c));
    if !matches(&campaign.regions, context.region)
        || !community_match
        || !matches(&campaign.user_types, context.user_type)
    {
        return Err(NoAdReason::NoTargetingMatch);
    }
    if let Some(scope) = campaign.consent_scope {
        let now_secs = now.as_second().unsigned_abs();
        let held = consent.is_some_and(|scopes| scopes.iter().any(|(s, expiry)| *s == scope && *expiry > now_secs));
        if !held {
            return Err(NoAdReason::ConsentMissing);
        }
    }
    Ok(())
}
