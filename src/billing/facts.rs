//! What billing reads before it judges a batch, one set query each: its campaigns (escrow,
//! caps, consent), their brands' room today, earlier billing of its tickets, its viewers'
//! recent events (frequency caps), and the wallets and consent of its signed-in viewers.

use std::collections::{HashMap, HashSet};

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Candidate;
use crate::adserver::pricing::EventType;
use crate::adserver::schedule;
use crate::money::Amount;

/// Frequency caps count the events of the hour before each one.
pub(super) const HOUR_SECS: i64 = 3600;

/// What billing needs to know about a campaign and its brand.
pub(super) struct CampaignFacts {
    pub(super) token: Address,
    pub(super) brand: Uuid,
    /// The advertiser's wallet (the brand owner's), for the spend leaderboard.
    pub(super) advertiser: Address,
    /// The advertiser's account, whose fee waivers apply.
    pub(super) advertiser_id: Uuid,
    pub(super) impression_cap: i64,
    pub(super) click_cap: i64,
    pub(super) consent_scope: Option<B256>,
    /// What it may still spend, and the most its running total may reach.
    pub(super) available: u128,
    pub(super) cap: u128,
}

pub(super) struct BrandFacts {
    pub(super) today: time::Date,
    /// What may still be spent today, within both the daily and the monthly budget.
    pub(super) room: u128,
    /// The most today's spend may reach: the daily budget, or less when the month's other
    /// days leave less of the monthly one.
    pub(super) limit: u128,
}

/// A linked viewer's wallet and the consent scopes it holds (with expiry).
pub(super) struct ViewerFacts {
    pub(super) wallet: Address,
    pub(super) consent: Vec<(B256, i64)>,
}

impl ViewerFacts {
    pub(super) fn holds(&self, scope: B256, at: i64) -> bool {
        self.consent.iter().any(|(s, expiry)| *s == scope && *expiry > at)
    }
}

/// The batch's campaigns: token, brand, caps, consent scope and what each may still spend.
pub(super) async fn campaign_facts(
    tx: &mut PgConnection,
    chain_id: u64,
    candidates: &[&Candidate],
) -> Result<HashMap<Uuid, CampaignFacts>, sqlx::Error> {
    let ids: Vec<Uuid> = candidates
        .iter()
        .map(|c| c.ticket.campaign_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let rows = sqlx::query!(
        r#"SELECT c.id AS "id!", c.token AS "token!: SqlAddress", c.brand_id AS "brand_id!", u.address AS "advertiser!: SqlAddress", u.id AS "advertiser_id!",
                  c.impression_cap_per_hour AS "impression_cap_per_hour!", c.click_cap_per_hour AS "click_cap_per_hour!",
                  c.required_consent_scope AS "required_consent_scope: SqlB256", cb.available AS "available!: Amount",
                  (cb.on_chain_remaining + cb.settled) AS "cap!: Amount"
           FROM campaigns c JOIN campaign_budgets($1, $2) cb ON cb.campaign_id = c.id
           JOIN brands b ON b.id = c.brand_id JOIN users u ON u.id = b.owner_id"#,
        i64::try_from(chain_id).unwrap_or(i64::MAX),
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let facts = CampaignFacts {
                token: row.token.0,
                brand: row.brand_id,
                advertiser: row.advertiser.0,
                advertiser_id: row.advertiser_id,
                impression_cap: i64::from(row.impression_cap_per_hour),
                click_cap: i64::from(row.click_cap_per_hour),
                consent_scope: row.required_consent_scope.map(|scope| scope.0),
                available: row.available.0,
                cap: row.cap.0,
            };
            (row.id, facts)
        })
        .collect())
}

/// The campaigns' brands: what each may still spend today, in its own time zone.
pub(super) async fn brand_facts(
    tx: &mut PgConnection,
    campaigns: &HashMap<Uuid, CampaignFacts>,
    now: OffsetDateTime,
) -> Result<HashMap<Uuid, BrandFacts>, sqlx::Error> {
    let ids: Vec<Uuid> = campaigns
        .values()
        .map(|c| c.brand)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let brands = sqlx::query!(
        r#"SELECT id, time_zone, daily_budget AS "daily: Amount", monthly_budget AS "monthly: Amount"
           FROM brands WHERE id = ANY($1)"#,
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = schedule::timestamp(now);
    let mut periods = HashMap::new();
    let mut budgets = HashMap::new();
    for brand in brands {
        let zone = schedule::zone(&brand.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        periods.insert(brand.id, schedule::local_day_and_month(now, &zone));
        budgets.insert(brand.id, (brand.daily.0, brand.monthly.0));
    }
    let spend = crate::adserver::scheduler::brand_spend(&mut *tx, &periods).await?;
    Ok(periods
        .into_iter()
        .map(|(brand, (today, _))| {
            let (daily, monthly) = budgets[&brand];
            let (spent_today, spent_month) = spend.get(&brand).copied().unwrap_or_default();
            let other_days = spent_month.0.saturating_sub(spent_today.0);
            let limit = daily.min(monthly.saturating_sub(other_days));
            let room = limit.saturating_sub(spent_today.0);
            (brand, BrandFacts { today, room, limit })
        })
        .collect())
}

/// Events already billed for the batch's tickets: all of them, or only those of clicks.
pub(super) async fn already_billed(
    tx: &mut PgConnection,
    candidates: &[&Candidate],
    receipts: &[super::batch::Receipt],
    all: bool,
) -> Result<HashSet<(Uuid, EventType)>, sqlx::Error> {
    let tickets: Vec<Uuid> = candidates
        .iter()
        .filter(|c| all || receipts[c.position].event == EventType::Click)
        .map(|c| c.ticket.id)
        .collect();
    if tickets.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = sqlx::query!(
        r#"SELECT ticket_id, event AS "event: EventType" FROM billed_events WHERE ticket_id = ANY($1)"#,
        &tickets
    )
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(|row| (row.ticket_id, row.event)).collect())
}

pub(super) type FrequencyKey = (Uuid, [u8; 32]);

/// What the frequency index is keyed by: the first 8 bytes of SHA-256(ad id || viewer
/// hash), read as Postgres reads them into a bigint (big-endian, two's complement). The
/// row's own ad and viewer hash settle a collision.
pub(super) fn frequency_key(ad: Uuid, viewer_hash: &[u8; 32]) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(ad.as_bytes())
        .chain_update(viewer_hash)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Billed impressions and clicks of each (ad, viewer) in the batch, from an hour before its
/// earliest event.
pub(super) async fn frequency_history(
    tx: &mut PgConnection,
    candidates: &[&Candidate],
    receipts: &[super::batch::Receipt],
) -> Result<HashMap<FrequencyKey, Vec<(EventType, i64)>>, sqlx::Error> {
    let mut ads = Vec::new();
    let mut keys = Vec::new();
    let mut viewers = Vec::new();
    let mut since = i64::MAX;
    let mut pairs = HashSet::new();
    for candidate in candidates {
        let receipt = &receipts[candidate.position];
        if let Some(hash) = candidate.ticket.viewer
            && pairs.insert((candidate.ticket.ad_id, hash))
        {
            ads.push(candidate.ticket.ad_id);
            keys.push(frequency_key(candidate.ticket.ad_id, &hash));
            viewers.push(hash.to_vec());
        }
        since = since.min(receipt.at.unix_timestamp() - HOUR_SECS);
    }
    if ads.is_empty() {
        return Ok(HashMap::new());
    }
    let since = OffsetDateTime::from_unix_timestamp(since).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let rows = sqlx::query!(
        // LATERAL keeps this an index probe per pair, whatever the table's size.
        r#"SELECT p.ad AS "ad_id!", p.viewer AS "viewer_hash!: SqlB256", e.event AS "event!: EventType", e.occurred_at AS "occurred_at!"
           FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[]) AS p(ad, key, viewer)
           CROSS JOIN LATERAL (
               SELECT event, occurred_at FROM billed_events
               WHERE frequency_key = p.key AND ad_id = p.ad AND viewer_hash = p.viewer
                 AND event IN ('impression', 'click') AND occurred_at >= $4
           ) e"#,
        &ads,
        &keys,
        &viewers,
        since
    )
    .fetch_all(tx)
    .await?;
    let mut seen: HashMap<FrequencyKey, Vec<(EventType, i64)>> = HashMap::new();
    for row in rows {
        seen.entry((row.ad_id, row.viewer_hash.0.0))
            .or_default()
            .push((row.event, row.occurred_at.unix_timestamp()));
    }
    Ok(seen)
}

/// Wallets and consent of the linked viewers in the batch.
pub(super) async fn viewer_facts(
    tx: &mut PgConnection,
    chain_id: u64,
    candidates: &[&Candidate],
    receipts: &[super::batch::Receipt],
) -> Result<HashMap<String, ViewerFacts>, sqlx::Error> {
    let ids: Vec<String> = candidates
        .iter()
        .filter_map(|c| receipts[c.position].viewer.clone())
        .filter(|v| v.starts_with(crate::accounts::viewers::PREFIX))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        r#"SELECT v.viewer_id, u.address AS "address: SqlAddress", cv.scope AS "scope: SqlB256", cv.expiry
           FROM viewer_ids v JOIN users u ON u.id = v.user_id
           LEFT JOIN consent_view cv ON cv.chain_id = $2 AND cv.user_address = u.address
           WHERE v.viewer_id = ANY($1)"#,
        &ids,
        i64::try_from(chain_id).unwrap_or(i64::MAX)
    )
    .fetch_all(tx)
    .await?;
    let mut viewers: HashMap<String, ViewerFacts> = HashMap::new();
    for row in rows {
        let facts = viewers.entry(row.viewer_id).or_insert_with(|| ViewerFacts {
            wallet: row.address.0,
            consent: Vec::new(),
        });
        if let (Some(scope), Some(expiry)) = (row.scope, row.expiry) {
            facts.consent.push((scope.0, expiry));
        }
    }
    Ok(viewers)
}
