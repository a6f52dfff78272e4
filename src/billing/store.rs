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

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::Address;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::billed_rows::{Billed, insert_billed, insert_refused};
use super::facts::{HOUR_SECS, already_billed, brand_facts, campaign_facts, frequency_history, viewer_facts};
use super::spend::add_spend;
use super::split::shares;
use super::{BatchAnswer, Candidate, Checked, ReceiptResult, Refusal, SplitPolicy, VerifiedBatch, rewards_scope};
use crate::adserver::pricing::EventType;
use crate::leaderboards::tally::{self, Tally};
use crate::leaderboards::{Category, Zones};
use crate::money::Amount;
use crate::money::ledger::{self, Party, Posting, Source};
use crate::programs::promos::waivers::Waivers;

/// Attempts before a batch that keeps racing others gives up (the node retries later).
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum BillError {
    #[error("sequence {0} was already used for a different batch")]
    SequenceReused(u64),
    #[error("the batch kept racing other batches for the same budgets; retry it")]
    Contended,
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Bills a batch whose receipts were checked one by one (`checked[i]` for receipt `i`).
pub async fn bill(
    db: &PgPool,
    chain_id: u64,
    policy: &SplitPolicy,
    zones: &Zones,
    batch: &VerifiedBatch,
    checked: &[Checked],
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
            zones,
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
                                      witness_signature, witness_confirmed, receipt_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (hoster_node_id, sequence) DO NOTHING
         RETURNING id",
        batch.hoster.node,
        batch.sequence as i64,
        batch.witness.map(|w| w.node),
        batch.receipts_hash.as_slice(),
        &batch.hoster_signature,
        batch.witness_signature.as_deref(),
        batch.witness.map(|_| batch.confirmed.as_bytes()),
        batch.receipts.len() as i32
    )
    .fetch_optional(conn)
    .await
}

/// The first answer to a batch submitted again, if it is the same batch: the same receipts
/// (their hash says so) confirmed by the same witness. The answer is rebuilt from the
/// refusals recorded for the batch and the billed events under the receipts' own keys.
async fn replay(db: &PgPool, batch: &VerifiedBatch, checked: &[Checked]) -> Result<BatchAnswer, BillError> {
    let stored = sqlx::query!(
        "SELECT id, receipts_hash, witness_node_id, witness_confirmed
         FROM receipt_batches WHERE hoster_node_id = $1 AND sequence = $2",
        batch.hoster.node,
        batch.sequence as i64
    )
    .fetch_one(db)
    .await?;
    let same = stored.receipts_hash == batch.receipts_hash.as_slice()
        && stored.witness_node_id == batch.witness.map(|w| w.node)
        && stored.witness_confirmed.as_deref() == batch.witness.map(|_| batch.confirmed.as_bytes());
    if !same {
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
        r#"SELECT ticket_id, event AS "event: EventType", price AS "price: Amount" FROM billed_events
           WHERE (ticket_id, event) IN (SELECT * FROM UNNEST($1::uuid[], $2::billable_event[])) AND batch_id = $3"#,
        &tickets,
        &events as &[EventType],
        stored.id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| ((row.ticket_id, row.event), row.price))
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
                    witnessed: batch.witness_of(index).is_some(),
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
                        witnessed: batch.witness_of(index).is_some(),
                        price: None,
                        reason: Some(reason),
                    }
                }
            }
        })
        .collect();
    Ok(answer(stored.id, batch.sequence, batch.witness.is_some(), receipts))
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

/// One attempt at billing a batch.
struct Context<'a> {
    batch_id: i64,
    chain_id: u64,
    policy: &'a SplitPolicy,
    /// The leaderboard zones the batch's scores are booked in.
    zones: &'a Zones,
    batch: &'a VerifiedBatch,
    checked: &'a [Checked],
    now: OffsetDateTime,
    /// Look up earlier billing of every ticket, not only of clicks' tickets.
    look_up_all: bool,
}

/// Judges every receipt and writes the outcome. `None` when a concurrent or earlier batch
/// got in the way and the transaction must start over.
#[allow(clippy::too_many_lines)]
async fn judge_and_write(tx: &mut PgConnection, context: &Context<'_>) -> Result<Option<BatchAnswer>, BillError> {
    let Context {
        batch_id,
        chain_id,
        policy,
        zones,
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
    let advertisers: Vec<Uuid> = campaigns.values().map(|c| c.advertiser_id).collect();
    let earliest = candidates.iter().map(|c| receipts[c.position].at).min().unwrap_or(now);
    let mut waivers = Waivers::load(tx, &advertisers, earliest).await?;

    let mut results = Vec::with_capacity(receipts.len());
    let mut billed: Vec<Billed> = Vec::new();
    let mut refused: Vec<(usize, Option<Uuid>, Refusal)> = Vec::new();
    let mut postings: BTreeMap<Address, Posting> = BTreeMap::new();
    let mut scores = Tally::default();
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
                let campaign_and_brand = campaigns
                    .get_mut(&ticket.campaign_id)
                    .and_then(|campaign| Some((brands.get_mut(&campaign.brand)?, campaign)));
                // Every campaign's brand is read with it, in the same transaction.
                let judged = match campaign_and_brand {
                    None => Err(Refusal::CampaignBudgetExhausted),
                    Some((brand, campaign)) => {
                        let frequency_key = hashed.map(|h| (ticket.ad_id, h));
                        let reward_scope = campaign.consent_scope.unwrap_or_else(rewards_scope);
                        let rewarded = linked.filter(|v| v.holds(reward_scope, at)).map(|v| v.wallet);
                        let witness = batch.witness_of(position);
                        let mut shares = shares(policy, witness.is_some(), receipt.event, candidate.price, rewarded);
                        // A promotion may waive part of the platform's share: the advertiser
                        // pays that much less, and nobody else earns less.
                        let waived =
                            waivers.quote(campaign.advertiser_id, receipt.event, at, shares[1], candidate.price);
                        let waived_amount = waived.map_or(Amount::ZERO, |w| w.amount);
                        shares[1] = shares[1].saturating_sub(waived_amount);
                        let price = candidate.price.saturating_sub(waived_amount);
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
                        } else if campaign.available < price.0 {
                            Err(Refusal::CampaignBudgetExhausted)
                        } else if brand.room < price.0 {
                            Err(Refusal::BrandBudgetReached)
                        } else {
                            if let Some(waived) = waived {
                                waivers.take(campaign.advertiser_id, campaign.token, waived);
                            }
                            campaign.available -= price.0;
                            brand.room -= price.0;
                            *campaign_delta.entry(ticket.campaign_id).or_default() += price.0;
                            *brand_delta.entry(campaign.brand).or_default() += price.0;
                            billed_keys.insert((ticket.id, receipt.event));
                            if let Some(key) = frequency_key {
                                seen.entry(key).or_default().push((receipt.event, at));
                            }
                            let posting = postings.entry(campaign.token).or_default();
                            posting.spend(ticket.campaign_id, price);
                            posting.earn(Party::Hoster, batch.hoster.payee, shares[0]);
                            posting.earn(Party::Platform, policy.platform, shares[1]);
                            if let Some(witness) = witness {
                                posting.earn(Party::Witness, witness.payee, shares[2]);
                                scores.add(Category::WitnessWork, campaign.token, witness.payee, 1);
                            }
                            scores.add(
                                Category::HosterEarnings,
                                campaign.token,
                                batch.hoster.payee,
                                shares[0].0,
                            );
                            scores.add(Category::AdvertiserSpend, campaign.token, campaign.advertiser, price.0);
                            if receipt.event == EventType::Impression {
                                scores.add(Category::ImpressionsServed, campaign.token, batch.hoster.payee, 1);
                            }
                            if let Some(wallet) = rewarded {
                                posting.earn(Party::Viewer, wallet, shares[3]);
                            }
                            billed.push(Billed {
                                candidate,
                                price,
                                shares,
                                viewer_payee: rewarded.filter(|_| !shares[3].is_zero()),
                            });
                            Ok(price)
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
                witnessed: batch.witness_of(position).is_some(),
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
                    witnessed: batch.witness_of(position).is_some(),
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
    waivers.record(tx, batch_id).await?;
    ledger::post(tx, chain_id, Source::ReceiptBatch, &batch_id.to_string(), &postings).await?;
    if !add_spend(tx, &campaigns, &campaign_delta, &brands, &brand_delta).await? {
        return Ok(None);
    }
    // Last: concurrent batches share these rows (an advertiser's, a period's, a trial's),
    // so they are held for no longer than the commit.
    tally::record(tx, zones, now, &scores).await?;
    if !waivers.count_trials(tx).await? {
        return Ok(None);
    }
    Ok(Some(answer(batch_id, batch.sequence, batch.witness.is_some(), results)))
}
