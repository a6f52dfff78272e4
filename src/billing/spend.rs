//! The running totals batches contend for: each campaign's billed spend (capped by its
//! escrow) and each brand's spend per local day (capped by its budgets).

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use uuid::Uuid;

use super::facts::{BrandFacts, CampaignFacts};
use crate::money::Amount;

/// Adds to the campaigns' running totals and the brands' spend of their local day, unless
/// that would pass a campaign's escrow or a brand's room for today. `false` when a
/// concurrent batch spent what this one counted on.
pub(super) async fn add_spend(
    tx: &mut PgConnection,
    campaigns: &HashMap<Uuid, CampaignFacts>,
    campaign_delta: &HashMap<Uuid, u128>,
    brands: &HashMap<Uuid, BrandFacts>,
    brand_delta: &HashMap<Uuid, u128>,
) -> Result<bool, sqlx::Error> {
    if campaign_delta.is_empty() {
        return Ok(true);
    }
    // Sorted, because rows are locked in the order given (see `add_billed_spend`).
    let campaign_delta: BTreeMap<_, _> = campaign_delta.iter().collect();
    let brand_delta: BTreeMap<_, _> = brand_delta.iter().collect();
    let (campaign_ids, campaign_deltas, caps): (Vec<Uuid>, Vec<Amount>, Vec<Amount>) = campaign_delta
        .into_iter()
        .map(|(id, delta)| (*id, Amount(*delta), Amount(campaigns[id].cap)))
        .collect();
    let (mut brand_ids, mut days, mut brand_deltas, mut limits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, delta) in brand_delta {
        brand_ids.push(*id);
        days.push(brands[id].today);
        brand_deltas.push(Amount(*delta));
        limits.push(Amount(brands[id].limit));
    }
    sqlx::query_scalar!(
        r#"SELECT add_billed_spend($1, $2::numeric[], $3::numeric[], $4, $5, $6::numeric[], $7::numeric[]) AS "added!""#,
        &campaign_ids,
        &campaign_deltas as &[Amount],
        &caps as &[Amount],
        &brand_ids,
        &days,
        &brand_deltas as &[Amount],
        &limits as &[Amount]
    )
    .fetch_one(tx)
    .await
}
