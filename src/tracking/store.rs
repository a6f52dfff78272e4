//! Billing a verified batch in one Postgres transaction.
//!
//! The batch row goes in first: `(hoster, sequence)` is unique, so a resubmission (even a
//! concurrent one, which waits for the first to commit) finds it and gets the first answer.
//! Then everything the checks need is read in a handful of set queries, each receipt is
//! judged in batch order, and the results are written: billed events, refused receipts,
//! ledger postings, and the running spend totals.
//!
//! Budgets hold under concurrency without holding locks while judging: the totals are
//! updated last, with the budget as a condition (`billed + delta <= cap`). If another batch
//! spent the budget meanwhile, or billed one of our tickets, the transaction starts over and
//! judges against what that batch committed.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::{Address, B256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::split::{WHOLE, largest_remainder};
use super::{BatchAnswer, Candidate, ReceiptResult, Refusal, SplitPolicy, VerifiedBatch, rewards_scope};
use crate::ledger::{self, Posting, Role, Source};
use crate::money::Amount;
use crate::pricing::EventType;
use crate::schedule;

/// Attempts before a batch that keeps racing others gives up (the node retries later).
const MAX_ATTEMPTS: usize = 8;
const HOUR_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum BillError {
    #[error("sequence {0} was already used for a different batch")]
    SequenceReused(u64),
    #[error("the batch kept racing other batches for the same budgets; retry it")]
    Contended,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Bills a batch whose receipts were checked one by one (`checked[i]` for receipt `i`).
pub async fn bill(
    db: &PgPool,
    chain_id: u64,
    policy: &SplitPolicy,
    batch: &VerifiedBatch,
    checked: &[Result<Candidate, (Option<Uuid>, Refusal)>],
    now: OffsetDateTime,
) -> Result<BatchAnswer, BillError> {
    // The first attempt looks up earlier billing only for clicks (which need their
    // impression); other repeats surface as conflicts on insert, and the next attempt
    // looks them all up.
    let mut look_up_all = false;
    for _ in 0..MAX_ATTEMPTS {
        let mut tx = db.begin().await?;
        let Some(batch_id) = insert_batch(&mut tx, batch).await? else {
            tx.rollback().await?;
            return replay(db, batch, checked).await;
        };
        let context = Context {
            batch_id,
            chain_id,
            policy,
            batch,
            checked,
            now,
            look_up_all,
        };
        match judge_and_write(&mut tx, &context).await? {
            Some(answer) => {
                tx.commit().await?;
                return Ok(answer);
            }
            None => {
                tx.rollback().await?;
                look_up_all = true;
                metrics::counter!("adescrow_billing_retries_total").increment(1);
            }
        }
    }
    Err(BillError::Contended)
}

async fn insert_batch(conn: &mut PgConnection, batch: &VerifiedBatch) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO receipt_batches (hoster_node_id, sequence, witness_node_id, receipts_hash, hoster_signature,
                                      witness_signature, receipt_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (hoster_node_id, sequence) DO NOTHING
         RETURNING id",
        batch.hoster.node,
        batch.sequence as i64,
        batch.witness.map(|w| w.node),
        batch.receipts_hash.as_slice(),
        &batch.hoster_signature,
        batch.witness_signature.as_deref(),
        batch.receipts.len() as i32
    )
    .fetch_optional(conn)
    .await
}

/// The first answer to a batch submitted again, if it is the same batch. The receipts are
/// the same (their hash says so), so the answer is rebuilt from the refusals recorded for
/// the batch and the billed events under the receipts' own keys.
async fn replay(
    db: &PgPool,
    batch: &VerifiedBatch,
    checked: &[Result<Candidate, (Option<Uuid>, Refusal)>],
) -> Result<BatchAnswer, BillError> {
    let stored = sqlx::query!(
        r#"SELECT id, receipts_hash, witness_node_id IS NOT NULL AS "witnessed!"
           FROM receipt_batches WHERE hoster_node_id = $1 AND sequence = $2"#,
        batch.hoster.node,
        batch.sequence as i64
    )
    .fetch_one(db)
    .await?;
    if stored.receipts_hash != batch.receipts_hash.as_slice() {
        return Err(BillError::SequenceReused(batch.sequence));
    }
    let refused: HashMap<usize, (Option<Uuid>, Refusal)> = sqlx::query!(
        r#"SELECT position, ticket_id, reason AS "reason: Refusal" FROM refused_receipts WHERE batch_id = $1"#,
        stored.id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| (row.position as usize, (row.ticket_id, row.reason)))
    .collect();
    let (tickets, events): (Vec<Uuid>, Vec<EventType>) = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .map(|c| (c.ticket.id, batch.receipts[c.position].event))
        .unzip();
    let prices: HashMap<(Uuid, EventType), Amount> = sqlx::query!(
        r#"SELECT ticket_id, event AS "event: EventType", price::text AS "price!" FROM billed_events
           WHERE (ticket_id, event) IN (SELECT * FROM UNNEST($1::uuid[], $2::billable_event[])) AND batch_id = $3"#,
        &tickets,
        &events as &[EventType],
        stored.id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| ((row.ticket_id, row.event), Amount::from_db(&row.price)))
    .collect();
    let receipts = checked
        .iter()
        .enumerate()
        .map(|(index, check)| {
            let event = batch.receipts[index].event;
            let billed = check
                .as_ref()
                .ok()
                .filter(|_| !refused.contains_key(&index))
                .and_then(|c| prices.get(&(c.ticket.id, event)).map(|price| (c.ticket.id, *price)));
            match (billed, refused.get(&index)) {
                (Some((ticket_id, price)), _) => ReceiptResult {
                    index,
                    ticket_id: Some(ticket_id),
                    event,
                    billed: true,
                    price: Some(price),
                    reason: None,
                },
                (None, refusal) => {
                    // Every receipt of a stored batch was billed or refused; a receipt found
                    // in neither can only have been billed by another batch.
                    let (ticket_id, reason) = refusal.copied().unwrap_or((None, Refusal::Duplicate));
                    ReceiptResult {
                        index,
                        ticket_id,
                        event,
                        billed: false,
                        price: None,
                        reason: Some(reason),
                    }
                }
            }
        })
        .collect();
    Ok(answer(stored.id, batch.sequence, stored.witnessed, receipts))
}

fn answer(batch_id: i64, sequence: u64, witnessed: bool, receipts: Vec<ReceiptResult>) -> BatchAnswer {
    let billed = receipts.iter().filter(|r| r.billed).count();
    BatchAnswer {
        batch_id,
        sequence,
        witnessed,
        billed,
        refused: receipts.len() - billed,
        receipts,
    }
}

/// What billing needs to know about a campaign and its brand.
struct CampaignFacts {
    token: Address,
    brand: Uuid,
    impression_cap: i64,
    click_cap: i64,
    consent_scope: Option<B256>,
    /// What it may still spend, and the most its running total may reach.
    available: u128,
    cap: u128,
}

struct BrandFacts {
    today: time::Date,
    /// What may still be spent today, within both the daily and the monthly budget.
    room: u128,
    /// The most today's spend may reach: the daily budget, or less when the month's other
    /// days leave less of the monthly one.
    limit: u128,
}

/// A linked viewer's wallet and the consent scopes it holds (with expiry).
struct ViewerFacts {
    wallet: Address,
    consent: Vec<(B256, i64)>,
}

impl ViewerFacts {
    fn holds(&self, scope: B256, at: i64) -> bool {
        self.consent.iter().any(|(s, expiry)| *s == scope && *expiry > at)
    }
}

/// One receipt to write as billed.
struct Billed<'a> {
    candidate: &'a Candidate,
    viewer_hash: Option<[u8; 32]>,
    shares: [Amount; 4],
    viewer_payee: Option<Address>,
}

/// One attempt at billing a batch.
struct Context<'a> {
    batch_id: i64,
    chain_id: u64,
    policy: &'a SplitPolicy,
    batch: &'a VerifiedBatch,
    checked: &'a [Result<Candidate, (Option<Uuid>, Refusal)>],
    now: OffsetDateTime,
    /// Look up earlier billing of every ticket, not only of clicks' tickets.
    look_up_all: bool,
}

/// Judges every receipt and writes the outcome. `None` when a concurrent or earlier batch
/// got in the way and the transaction must start over.
#[allow(clippy::too_many_lines)]
async fn judge_and_write(tx: &mut PgConnection, context: &Context<'_>) -> Result<Option<BatchAnswer>, sqlx::Error> {
    let Context {
        batch_id,
        chain_id,
        policy,
        batch,
        checked,
        now,
        look_up_all,
    } = *context;
    let candidates: Vec<&Candidate> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
    let receipts = &batch.receipts;
    let mut campaigns = campaign_facts(tx, chain_id, &candidates).await?;
    let mut brands = brand_facts(tx, &campaigns, now).await?;
    let mut billed_keys = already_billed(tx, &candidates, &batch.receipts, look_up_all).await?;
    let mut seen = frequency_history(tx, &candidates, receipts).await?;
    let viewers = viewer_facts(tx, chain_id, &candidates, receipts).await?;

    let mut results = Vec::with_capacity(receipts.len());
    let mut billed: Vec<Billed> = Vec::new();
    let mut refused: Vec<(usize, Option<Uuid>, Refusal)> = Vec::new();
    let mut postings: BTreeMap<Address, Posting> = BTreeMap::new();
    let mut campaign_delta: HashMap<Uuid, u128> = HashMap::new();
    let mut brand_delta: HashMap<Uuid, u128> = HashMap::new();

    for (position, check) in checked.iter().enumerate() {
        let receipt = &receipts[position];
        let outcome = match check {
            Err((ticket_id, reason)) => Err((*ticket_id, *reason)),
            Ok(candidate) => {
                let ticket = &candidate.ticket;
                let at = receipt.at.unix_timestamp();
                let viewer = receipt.viewer.as_deref();
                // The ticket's viewer hash, which `check_receipt` matched to this viewer.
                let hashed = ticket.viewer;
                let linked = viewer.and_then(|v| viewers.get(v));
                let judged = match campaigns.get_mut(&ticket.campaign_id) {
                    None => Err(Refusal::CampaignBudgetExhausted),
                    Some(campaign) => {
                        let brand = brands.get_mut(&campaign.brand).expect("every campaign's brand is read");
                        let frequency_key = hashed.map(|h| (ticket.ad_id, h));
                        if billed_keys.contains(&(ticket.id, receipt.event)) {
                            Err(Refusal::Duplicate)
                        } else if receipt.event == EventType::Click
                            && !billed_keys.contains(&(ticket.id, EventType::Impression))
                        {
                            Err(Refusal::ClickWithoutImpression)
                        } else if frequency_key.is_some_and(|key| {
                            let cap = match receipt.event {
                                EventType::Impression => campaign.impression_cap,
                                EventType::Click => campaign.click_cap,
                                _ => i64::MAX,
                            };
                            let recent = seen.get(&key).map_or(0, |events| {
                                events
                                    .iter()
                                    .filter(|(e, t)| *e == receipt.event && *t > at - HOUR_SECS && *t <= at)
                                    .count()
                            });
                            recent as i64 >= cap
                        }) {
                            Err(Refusal::FrequencyCapped)
                        } else if campaign
                            .consent_scope
                            .is_some_and(|scope| !linked.is_some_and(|v| v.holds(scope, at)))
                        {
                            Err(Refusal::ConsentMissing)
                        } else if campaign.available < candidate.price.0 {
                            Err(Refusal::CampaignBudgetExhausted)
                        } else if brand.room < candidate.price.0 {
                            Err(Refusal::BrandBudgetReached)
                        } else {
                            campaign.available -= candidate.price.0;
                            brand.room -= candidate.price.0;
                            *campaign_delta.entry(ticket.campaign_id).or_default() += candidate.price.0;
                            *brand_delta.entry(campaign.brand).or_default() += candidate.price.0;
                            billed_keys.insert((ticket.id, receipt.event));
                            if let Some(key) = frequency_key {
                                seen.entry(key).or_default().push((receipt.event, at));
                            }
                            let reward_scope = campaign.consent_scope.unwrap_or_else(rewards_scope);
                            let rewarded = linked.filter(|v| v.holds(reward_scope, at)).map(|v| v.wallet);
                            let shares = split(
                                policy,
                                batch.witness.is_some(),
                                receipt.event,
                                candidate.price,
                                rewarded,
                            );
                            let posting = postings.entry(campaign.token).or_default();
                            posting.spend(ticket.campaign_id, candidate.price);
                            posting.earn(Role::Hoster, batch.hoster.payee, shares[0]);
                            posting.earn(Role::Platform, policy.platform, shares[1]);
                            if let Some(witness) = batch.witness {
                                posting.earn(Role::Witness, witness.payee, shares[2]);
                            }
                            if let Some(wallet) = rewarded {
                                posting.earn(Role::Viewer, wallet, shares[3]);
                            }
                            billed.push(Billed {
                                candidate,
                                viewer_hash: hashed,
                                shares,
                                viewer_payee: rewarded.filter(|_| !shares[3].is_zero()),
                            });
                            Ok(candidate.price)
                        }
                    }
                };
                judged.map_err(|reason| (Some(ticket.id), reason))
            }
        };
        results.push(match outcome {
            Ok(price) => ReceiptResult {
                index: position,
                ticket_id: check.as_ref().ok().map(|c| c.ticket.id),
                event: receipt.event,
                billed: true,
                price: Some(price),
                reason: None,
            },
            Err((ticket_id, reason)) => {
                refused.push((position, ticket_id, reason));
                ReceiptResult {
                    index: position,
                    ticket_id,
                    event: receipt.event,
                    billed: false,
                    price: None,
                    reason: Some(reason),
                }
            }
        });
    }
    debug_assert!(postings.values().all(Posting::balances));

    if !insert_billed(tx, batch_id, batch, &billed).await? {
        return Ok(None);
    }
    insert_refused(tx, batch_id, receipts, &refused).await?;
    ledger::post(tx, Source::ReceiptBatch, &batch_id.to_string(), &postings).await?;
    if !add_spend(tx, &campaigns, &campaign_delta, &brands, &brand_delta).await? {
        return Ok(None);
    }
    Ok(Some(answer(batch_id, batch.sequence, batch.witness.is_some(), results)))
}

/// Hoster, platform, witness and viewer shares of one price.
fn split(
    policy: &SplitPolicy,
    witnessed: bool,
    event: EventType,
    price: Amount,
    rewarded: Option<Address>,
) -> [Amount; 4] {
    let [hoster, mut platform, witness] = if witnessed {
        largest_remainder(price, policy.witnessed)
    } else {
        let [hoster, platform] = largest_remainder(price, policy.unwitnessed);
        [hoster, platform, Amount::ZERO]
    };
    let reward = match rewarded {
        // The reward comes out of the platform's share and never exceeds it.
        Some(_) => Amount(
            price.0 / u128::from(WHOLE) * u128::from(policy.viewer_reward[event as usize])
                + price.0 % u128::from(WHOLE) * u128::from(policy.viewer_reward[event as usize]) / u128::from(WHOLE),
        )
        .min(platform),
        None => Amount::ZERO,
    };
    platform = platform.saturating_sub(reward);
    [hoster, platform, witness, reward]
}

async fn campaign_facts(
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
        r#"SELECT c.id AS "id!", c.token AS "token!", c.brand_id AS "brand_id!",
                  c.impression_cap_per_hour AS "impression_cap_per_hour!", c.click_cap_per_hour AS "click_cap_per_hour!",
                  c.required_consent_scope, cb.available::text AS "available!",
                  (cb.on_chain_remaining + cb.settled)::text AS "cap!"
           FROM campaigns c JOIN campaign_budgets($1, $2) cb ON cb.campaign_id = c.id"#,
        i64::try_from(chain_id).unwrap_or(i64::MAX),
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let facts = CampaignFacts {
                token: Address::from_slice(&row.token),
                brand: row.brand_id,
                impression_cap: i64::from(row.impression_cap_per_hour),
                click_cap: i64::from(row.click_cap_per_hour),
                consent_scope: row.required_consent_scope.as_deref().map(B256::from_slice),
                available: Amount::from_db(&row.available).0,
                cap: Amount::from_db(&row.cap).0,
            };
            (row.id, facts)
        })
        .collect())
}

async fn brand_facts(
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
        r#"SELECT id, time_zone, daily_budget::text AS "daily!", monthly_budget::text AS "monthly!"
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
        budgets.insert(
            brand.id,
            (Amount::from_db(&brand.daily).0, Amount::from_db(&brand.monthly).0),
        );
    }
    let spend = crate::scheduler::brand_spend(&mut *tx, &periods).await?;
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
async fn already_billed(
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

type FrequencyKey = (Uuid, [u8; 32]);

/// What the frequency index is keyed by: the first 8 bytes of SHA-256(ad id || viewer
/// hash), read as Postgres reads them into a bigint (big-endian, two's complement). The
/// row's own ad and viewer hash settle a collision.
fn frequency_key(ad: Uuid, viewer_hash: &[u8; 32]) -> i64 {
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
async fn frequency_history(
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
        r#"SELECT p.ad AS "ad_id!", p.viewer AS "viewer_hash!", e.event AS "event!: EventType", e.occurred_at AS "occurred_at!"
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
        let hash: [u8; 32] = row.viewer_hash.as_slice().try_into().unwrap_or_default();
        seen.entry((row.ad_id, hash))
            .or_default()
            .push((row.event, row.occurred_at.unix_timestamp()));
    }
    Ok(seen)
}

/// Wallets and consent of the linked viewers in the batch.
async fn viewer_facts(
    tx: &mut PgConnection,
    chain_id: u64,
    candidates: &[&Candidate],
    receipts: &[super::batch::Receipt],
) -> Result<HashMap<String, ViewerFacts>, sqlx::Error> {
    let ids: Vec<String> = candidates
        .iter()
        .filter_map(|c| receipts[c.position].viewer.clone())
        .filter(|v| v.starts_with(crate::viewers::PREFIX))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        "SELECT v.viewer_id, u.address, cv.scope, cv.expiry
         FROM viewer_ids v JOIN users u ON u.id = v.user_id
         LEFT JOIN consent_view cv ON cv.chain_id = $2 AND cv.user_address = u.address
         WHERE v.viewer_id = ANY($1)",
        &ids,
        i64::try_from(chain_id).unwrap_or(i64::MAX)
    )
    .fetch_all(tx)
    .await?;
    let mut viewers: HashMap<String, ViewerFacts> = HashMap::new();
    for row in rows {
        let facts = viewers.entry(row.viewer_id).or_insert_with(|| ViewerFacts {
            wallet: Address::from_slice(&row.address),
            consent: Vec::new(),
        });
        if let (Some(scope), Some(expiry)) = (row.scope, row.expiry) {
            facts.consent.push((B256::from_slice(&scope), expiry));
        }
    }
    Ok(viewers)
}

/// Writes the billed receipts with `COPY`, the cheapest way into Postgres. `false` when one
/// of them was billed meanwhile (the primary key refuses it, which aborts the transaction).
async fn insert_billed(
    tx: &mut PgConnection,
    batch_id: i64,
    batch: &VerifiedBatch,
    billed: &[Billed<'_>],
) -> Result<bool, sqlx::Error> {
    if billed.is_empty() {
        return Ok(true);
    }
    // In ticket order: tickets are time-ordered, so consecutive rows go to the same few
    // pages at the end of the ticket index.
    let mut order: Vec<&Billed<'_>> = billed.iter().collect();
    order.sort_unstable_by_key(|entry| entry.candidate.ticket.id);
    let mut rows = String::with_capacity(billed.len() * 360);
    for entry in order {
        copy_row(&mut rows, batch_id, batch, entry);
    }
    let mut copy = tx
        .copy_in_raw(
            "COPY billed_events (ticket_id, event, campaign_id, ad_id, hoster_node_id, witness_node_id, price,
                                 occurred_at, batch_id, position, viewer_hash, frequency_key, order_ref, hoster_share,
                                 platform_share, witness_share, viewer_share, viewer_payee) FROM STDIN",
        )
        .await?;
    copy.send(rows.as_bytes()).await?;
    match copy.finish().await {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("billed_events_pkey") => Ok(false),
        Err(error) => Err(error),
    }
}

/// One billed event as a line of `COPY`'s text format: tab-separated, `\N` for null.
fn copy_row(out: &mut String, batch_id: i64, batch: &VerifiedBatch, entry: &Billed<'_>) {
    use std::fmt::Write as _;
    let candidate = entry.candidate;
    let receipt = &batch.receipts[candidate.position];
    let bytea = |out: &mut String, bytes: Option<&[u8]>| match bytes {
        // `\x` is bytea's hex form, with COPY's own escape of the backslash.
        Some(bytes) => {
            out.push_str("\\\\x");
            out.push_str(&hex::encode(bytes));
        }
        None => out.push_str("\\N"),
    };
    let witness = batch.witness.map_or_else(|| "\\N".to_owned(), |w| w.node.to_string());
    let at = receipt
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("billable times format");
    write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
        candidate.ticket.id,
        receipt.event.label(),
        candidate.ticket.campaign_id,
        candidate.ticket.ad_id,
        batch.hoster.node,
        witness,
        candidate.price,
        at,
        batch_id,
        candidate.position,
    )
    .expect("writing to a String cannot fail");
    bytea(out, entry.viewer_hash.as_ref().map(|h| h.as_slice()));
    match &entry.viewer_hash {
        Some(hash) => {
            write!(out, "\t{}\t", frequency_key(candidate.ticket.ad_id, hash)).expect("writing to a String cannot fail")
        }
        None => out.push_str("\t\\N\t"),
    }
    match &receipt.order_ref {
        Some(order) => {
            for c in order.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
        None => out.push_str("\\N"),
    }
    for share in entry.shares {
        write!(out, "\t{share}").expect("writing to a String cannot fail");
    }
    out.push('\t');
    bytea(out, entry.viewer_payee.as_ref().map(|p| p.as_slice()));
    out.push('\n');
}

async fn insert_refused(
    tx: &mut PgConnection,
    batch_id: i64,
    receipts: &[super::batch::Receipt],
    refused: &[(usize, Option<Uuid>, Refusal)],
) -> Result<(), sqlx::Error> {
    if refused.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = refused.iter().map(|(p, _, _)| *p as i32).collect();
    let tickets: Vec<Option<Uuid>> = refused.iter().map(|(_, t, _)| *t).collect();
    let events: Vec<EventType> = refused.iter().map(|(p, _, _)| receipts[*p].event).collect();
    let times: Vec<OffsetDateTime> = refused.iter().map(|(p, _, _)| receipts[*p].at).collect();
    let reasons: Vec<Refusal> = refused.iter().map(|(_, _, r)| *r).collect();
    sqlx::query!(
        "INSERT INTO refused_receipts (batch_id, position, ticket_id, event, occurred_at, reason)
         SELECT $1, n, t, e, o, r
         FROM UNNEST($2::int[], $3::uuid[], $4::billable_event[], $5::timestamptz[], $6::refusal_reason[])
              AS u(n, t, e, o, r)",
        batch_id,
        &positions,
        &tickets as &[Option<Uuid>],
        &events as &[EventType],
        &times,
        &reasons as &[Refusal]
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Adds to the campaigns' running totals and the brands' spend of their local day, unless
/// that would pass a campaign's escrow or a brand's room for today. `false` when a
/// concurrent batch spent what this one counted on.
async fn add_spend(
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
    let (campaign_ids, campaign_deltas, caps): (Vec<Uuid>, Vec<String>, Vec<String>) = campaign_delta
        .into_iter()
        .map(|(id, delta)| (*id, delta.to_string(), campaigns[id].cap.to_string()))
        .collect();
    let (mut brand_ids, mut days, mut brand_deltas, mut limits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, delta) in brand_delta {
        brand_ids.push(*id);
        days.push(brands[id].today);
        brand_deltas.push(delta.to_string());
        limits.push(brands[id].limit.to_string());
    }
    sqlx::query_scalar!(
        r#"SELECT add_billed_spend($1, $2::text[]::numeric[], $3::text[]::numeric[],
                                   $4, $5, $6::text[]::numeric[], $7::text[]::numeric[]) AS "added!""#,
        &campaign_ids,
        &campaign_deltas,
        &caps,
        &brand_ids,
        &days,
        &brand_deltas,
        &limits
    )
    .fetch_one(tx)
    .await
}
