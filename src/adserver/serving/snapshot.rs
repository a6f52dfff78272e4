//! The serving index: everything a decision needs, read from Postgres in one go and then
//! only read from memory. Rebuilt whenever what it holds changes (see [`super::refresher`]).

use std::collections::HashMap;
use std::sync::Arc;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use sqlx::PgPool;
use uuid::Uuid;

use crate::adserver::campaigns::FrequencyCaps;
use crate::adserver::creatives::{Creative, CreativeKind};
use crate::adserver::pricing::{self, EventType, UnitPrices};
use crate::adserver::schedule::{self, Schedule};
use crate::money::Amount;

/// A running campaign as decisions see it.
#[derive(Debug)]
pub struct CampaignEntry {
    pub id: Uuid,
    /// Index into [`Snapshot::zones`].
    pub zone: usize,
    pub schedule: Schedule,
    pub regions: Vec<String>,
    pub communities: Vec<String>,
    pub user_types: Vec<String>,
    pub consent_scope: Option<B256>,
    pub caps: FrequencyCaps,
    /// What the campaign may still spend when the snapshot was taken.
    pub available: Amount,
}

/// An active ad of a running campaign.
#[derive(Debug)]
pub struct AdEntry {
    pub id: Uuid,
    /// Index into [`Snapshot::campaigns`].
    pub campaign: usize,
    pub prices: UnitPrices,
    pub creative: Arc<Creative>,
}

/// A node that may call the ad server and sign receipts.
#[derive(Debug, Clone, Copy)]
pub struct ActiveNode {
    pub id: Uuid,
    pub address: Address,
    pub owner: Uuid,
    /// The owner's wallet: where the node's earnings are paid.
    pub payee: Address,
    pub can_witness: bool,
}

/// Ads of equal priority and expected revenue: decisions pick among them at random.
#[derive(Debug, Default)]
pub struct Tier {
    pub priority: i32,
    /// Expected revenue per thousand impressions, in base units.
    pub ecpm: u128,
    pub ads: Vec<AdEntry>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    /// Placement slug to the most ads it shows.
    pub placements: HashMap<String, (Uuid, usize)>,
    /// Nodes that may ask for decisions and sign receipts: not retired, owner still a hoster.
    pub active_nodes: HashMap<Uuid, ActiveNode>,
    pub node_ids: HashMap<Address, Uuid>,
    pub zones: Vec<TimeZone>,
    pub campaigns: Vec<CampaignEntry>,
    /// Best first.
    pub tiers: Vec<Tier>,
    /// Linked viewer id to the consent scopes its wallet holds, with expiry (unix seconds).
    pub consent: HashMap<String, Vec<(B256, u64)>>,
}

/// Prior rates per impression, used until an ad has its own history; weighted as this many
/// impressions of evidence.
const PRIOR_WEIGHT: f64 = 100.0;
const PRIOR_CLICK_RATE: f64 = 0.01;
const PRIOR_VIEW_RATE: f64 = 0.05;
const PRIOR_ACQUISITION_RATE: f64 = 0.001;

/// Expected revenue per thousand impressions from an ad's prices and billed history.
pub fn expected_ecpm(prices: &UnitPrices, history: &[i64; 4]) -> u128 {
    let impressions = history[EventType::Impression as usize] as f64;
    let rate = |event: EventType, prior: f64| {
        (history[event as usize] as f64 + prior * PRIOR_WEIGHT) / (impressions + PRIOR_WEIGHT)
    };
    let value = |event: EventType| prices.get(event).map_or(0.0, |p| p.0 as f64);
    let per_impression = value(EventType::Impression)
        + rate(EventType::Click, PRIOR_CLICK_RATE) * value(EventType::Click)
        + rate(EventType::View, PRIOR_VIEW_RATE) * value(EventType::View)
        + rate(EventType::Acquisition, PRIOR_ACQUISITION_RATE) * value(EventType::Acquisition);
    (per_impression * 1000.0).round() as u128
}

impl Snapshot {
    pub async fn load(db: &PgPool, chain_id: u64, now: Timestamp) -> Result<Snapshot, sqlx::Error> {
        let chain_id = i64::try_from(chain_id).unwrap_or(i64::MAX);
        let mut snapshot = Snapshot::default();

        for row in sqlx::query!("SELECT id, slug, max_ads FROM placements")
            .fetch_all(db)
            .await?
        {
            snapshot
                .placements
                .insert(row.slug, (row.id, row.max_ads.max(1) as usize));
        }

        let nodes = sqlx::query!(
            r#"SELECT n.id, n.address AS "address: SqlAddress", n.owner_id, u.address AS "owner_address: SqlAddress", n.can_witness
             FROM nodes n JOIN users u ON u.id = n.owner_id
             WHERE n.retired_at IS NULL
               AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = n.owner_id AND r.role = 'hoster')"#
        )
        .fetch_all(db)
        .await?;
        for node in nodes {
            let node = ActiveNode {
                id: node.id,
                address: node.address.0,
                owner: node.owner_id,
                payee: node.owner_address.0,
                can_witness: node.can_witness,
            };
            snapshot.node_ids.insert(node.address, node.id);
            snapshot.active_nodes.insert(node.id, node);
        }

        let campaigns = sqlx::query!(
            r#"SELECT c.id, schedule_instant(c.starts_at) AS "starts_at!", schedule_instant(c.ends_at) AS "ends_at!", c.daypart_start_hour, c.daypart_end_hour, c.target_regions,
                      c.target_communities, c.target_user_types, c.required_consent_scope AS "required_consent_scope: SqlB256",
                      c.impression_cap_per_hour, c.click_cap_per_hour, b.time_zone, cb.available AS "available!: Amount"
               FROM campaigns c JOIN brands b ON b.id = c.brand_id
               JOIN campaign_budgets($1) cb ON cb.campaign_id = c.id
               WHERE c.status = 'running' AND b.active"#,
            chain_id
        )
        .fetch_all(db)
        .await?;
        let mut zone_index: HashMap<String, usize> = HashMap::new();
        let mut campaign_index: HashMap<Uuid, usize> = HashMap::new();
        for row in campaigns {
            let Some(zone) = schedule::zone(&row.time_zone) else {
                tracing::warn!(campaign = %row.id, zone = row.time_zone, "unknown time zone; campaign not served");
                continue;
            };
            let campaign_schedule =
                match Schedule::from_db(row.starts_at, row.ends_at, row.daypart_start_hour, row.daypart_end_hour) {
                    Ok(campaign_schedule) => campaign_schedule,
                    Err(error) => {
                        tracing::warn!(campaign = %row.id, %error, "campaign not served");
                        continue;
                    }
                };
            let zone = *zone_index.entry(row.time_zone).or_insert_with(|| {
                snapshot.zones.push(zone);
                snapshot.zones.len() - 1
            });
            campaign_index.insert(row.id, snapshot.campaigns.len());
            snapshot.campaigns.push(CampaignEntry {
                id: row.id,
                zone,
                schedule: campaign_schedule,
                regions: row.target_regions,
                communities: row.target_communities,
                user_types: row.target_user_types,
                consent_scope: row.required_consent_scope.map(B256::from),
                caps: FrequencyCaps {
                    impressions_per_hour: row.impression_cap_per_hour.unsigned_abs(),
                    clicks_per_hour: row.click_cap_per_hour.unsigned_abs(),
                },
                available: row.available,
            });
        }

        let defaults: HashMap<Address, UnitPrices> = pricing::list_defaults(db).await?.into_iter().collect();
        let history = ad_history(db).await?;
        let ads = sqlx::query!(
            r#"SELECT a.id, s.campaign_id, c.token AS "token: SqlAddress", c.priority, a.kind AS "kind: CreativeKind", a.title,
                      a.body, a.media_url, a.click_url, a.price_impression AS "price_impression: Amount",
                      a.price_click AS "price_click: Amount", a.price_view AS "price_view: Amount",
                      a.price_acquisition AS "price_acquisition: Amount"
               FROM ads a JOIN ad_sets s ON s.id = a.ad_set_id JOIN campaigns c ON c.id = s.campaign_id
               JOIN brands b ON b.id = c.brand_id
               WHERE a.active AND s.active AND c.status = 'running' AND b.active"#
        )
        .fetch_all(db)
        .await?;
        let mut ranked: Vec<(i32, u128, AdEntry)> = Vec::with_capacity(ads.len());
        for row in ads {
            let Some(&campaign) = campaign_index.get(&row.campaign_id) else {
                continue;
            };
            let own = UnitPrices::from_columns(
                row.price_impression,
                row.price_click,
                row.price_view,
                row.price_acquisition,
            );
            let token_defaults = defaults.get(&row.token.0).copied().unwrap_or_default();
            let prices = UnitPrices::effective(&own, &token_defaults);
            if prices.is_empty() {
                tracing::warn!(ad = %row.id, "ad has no price and its token no default; not served");
                continue;
            }
            let (Ok(click_url), media_url) = (row.click_url.parse(), row.media_url.and_then(|u| u.parse().ok())) else {
                continue;
            };
            let ecpm = expected_ecpm(&prices, history.get(&row.id).unwrap_or(&[0; 4]));
            ranked.push((
                row.priority,
                ecpm,
                AdEntry {
                    id: row.id,
                    campaign,
                    prices,
                    creative: Arc::new(Creative {
                        kind: row.kind,
                        title: row.title,
                        text: row.body,
                        media_url,
                        click_url,
                    }),
                },
            ));
        }
        ranked.sort_by_key(|(priority, ecpm, _)| std::cmp::Reverse((*priority, *ecpm)));
        for (priority, ecpm, ad) in ranked {
            match snapshot.tiers.last_mut() {
                Some(tier) if tier.priority == priority && tier.ecpm == ecpm => tier.ads.push(ad),
                _ => snapshot.tiers.push(Tier {
                    priority,
                    ecpm,
                    ads: vec![ad],
                }),
            }
        }

        let consent = sqlx::query!(
            r#"SELECT v.viewer_id, cv.scope AS "scope!: SqlB256", cv.expiry AS "expiry!"
               FROM viewer_ids v JOIN users u ON u.id = v.user_id
               JOIN consent_view cv ON cv.user_address = u.address AND cv.chain_id = $1
               WHERE cv.expiry > $2"#,
            chain_id,
            now.as_second()
        )
        .fetch_all(db)
        .await?;
        for row in consent {
            snapshot
                .consent
                .entry(row.viewer_id)
                .or_default()
                .push((row.scope.0, row.expiry.unsigned_abs()));
        }
        Ok(snapshot)
    }

    pub fn ad_count(&self) -> usize {
        self.tiers.iter().map(|tier| tier.ads.len()).sum()
    }
}

/// Billed events per ad over the last week: impressions, clicks, views, acquisitions.
async fn ad_history(db: &PgPool) -> Result<HashMap<Uuid, [i64; 4]>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT e.ad_id, e.event AS "event: EventType", count(*) AS "count!"
           FROM billed_events e JOIN campaigns c ON c.id = e.campaign_id
           WHERE c.status = 'running' AND e.billed_at > now() - interval '7 days'
           GROUP BY e.ad_id, e.event"#
    )
    .fetch_all(db)
    .await?;
    let mut history: HashMap<Uuid, [i64; 4]> = HashMap::new();
    for row in rows {
        history.entry(row.ad_id).or_default()[row.event as usize] = row.count;
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_revenue_blends_prices_with_smoothed_rates() {
        let mut cpm_only = UnitPrices::default();
        cpm_only.set(EventType::Impression, Some(Amount(2_000)));
        assert_eq!(expected_ecpm(&cpm_only, &[0; 4]), 2_000_000);

        let mut cpc_only = UnitPrices::default();
        cpc_only.set(EventType::Click, Some(Amount(100_000)));
        // No history: the 1% prior click rate gives 1,000 per impression.
        assert_eq!(expected_ecpm(&cpc_only, &[0; 4]), 1_000_000);
        // 900 impressions and 99 clicks: (99 + 1) / (900 + 100) = 10%.
        assert_eq!(expected_ecpm(&cpc_only, &[900, 99, 0, 0]), 10_000_000);
    }
}
