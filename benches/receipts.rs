//! Tracking's figures, end to end through HTTP against a real Postgres:
//!
//! - **Witnessed impressions accepted and durable per second**: batches of 1,000
//!   impressions, each signed once by the hoster node and once by the witness node, posted
//!   to `POST /v1/receipts` on loopback by `CONCURRENCY` reqwest clients in this process; a
//!   batch counts when its answer (every receipt billed, committed) is back. The 99th
//!   percentile batch latency is reported with it.
//! - **k256 signature verification per batch**: recovering both signers of a batch digest.
//! - **Raw insert rate of the same rows**, right after billing in the same run: the billed
//!   events read back and written again with `COPY` into a table like `billed_events` (its
//!   indexes and checks), in the same batches, by as many connections, one commit a batch.
//!   That is the floor of what Postgres on this machine can take; billing's share of it
//!   (the ratio printed) moves far less between runs than either figure on a noisy machine.
//! - **Commission accrual**, after both: the campaigns' advertiser is attributed to an
//!   active affiliate before billing starts (applied, approved by an admin, a code, and the
//!   attribution, through the affiliate program's own functions), so billing runs with
//!   affiliates attributed to everything it bills; commissions are not billing's work (they
//!   accrue outside its transaction, from the ledger). `commissions::accrue` then runs once
//!   over everything billed: how many commissions it wrote, per second, and how many billed
//!   receipts per second it covered. The ledger is checked afterwards: every commission (one
//!   per batch and affiliate) has its held transfer out of the platform's share and the
//!   campaigns it was earned on, the platform's balance is what billing credited less the
//!   commissions, and a second accrual writes nothing. Accrual reports its progress every
//!   minute, and one still running after ten minutes is stopped (its open page rolls back)
//!   and fails the bench: the ledger could not be checked.
//!
//! Billing runs with promotions live, as it would with them in use: the campaigns'
//! advertiser redeemed a free trial covering the first half of the run's impressions and a
//! fee discount, so every billed event is priced under one of them (the trial's count
//! updated once a batch). After the run, the trial's impressions are checked all waived.
//!
//! Tickets are issued in process with the server's ticket key (as decisions would), for 200
//! campaigns with five ads each and 100 settled epochs of history, and batches are signed
//! before the clock starts: the figures are the server's.
//!
//! ```text
//! cargo bench --bench receipts
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_receipts`. Exits non-zero when a
//! figure misses its target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
// A bench binary reports on stdout.
#![allow(clippy::print_stdout)]

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adescrow::adserver::pricing::{EventType, UnitPrices};
use adescrow::adserver::serving::Ticket;
use adescrow::billing::batch::{self, Confirmations, Receipt};
use adescrow::http::{AppState, app};
use adescrow::money::Amount;
use adescrow::platform::db::MIGRATOR;
use adescrow::platform::values::Name;
use adescrow::programs::affiliates::{self, Channel, Status, Terms, commissions};
use adescrow::programs::promos::{self, Limits, NewPromotion, Offer, PromoCode};
use alloy::primitives::Address;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, ensure};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;

use support::{CHAIN_ID, percentile};
use uuid::Uuid;

const DATABASE: &str = "adescrow_bench_receipts";
const ESCROW: Address = Address::repeat_byte(0xe5);
const BATCH: usize = 1_000;
const BATCHES: usize = 600;
const CONCURRENCY: usize = 8;
const CAMPAIGNS: usize = 200;
const ADS_PER_CAMPAIGN: usize = 5;
const TARGET_PER_SEC: f64 = 50_000.0;
/// The affiliate the campaigns' advertiser was brought by, and the admin who approved it.
const AFFILIATE: Uuid = Uuid::from_u128(4);
/// The campaigns' advertiser.
const ADVERTISER: Uuid = Uuid::from_u128(1);
/// The free trial's impressions: half of the run's.
const TRIAL: u32 = (BATCHES * BATCH / 2) as u32;
const ADMIN: Uuid = Uuid::from_u128(5);

/// Beside the campaigns and their escrows: two hoster operators, five ads a campaign, and
/// settled history.
const SEED: &str = r#"
INSERT INTO users (id, address) VALUES
    ('00000000-0000-0000-0000-000000000002', '\x2222222222222222222222222222222222222222'),
    ('00000000-0000-0000-0000-000000000003', '\x3333333333333333333333333333333333333333'),
    ('00000000-0000-0000-0000-000000000004', '\x4444444444444444444444444444444444444444'),
    ('00000000-0000-0000-0000-000000000005', '\x5555555555555555555555555555555555555555');
INSERT INTO user_roles (user_id, role) VALUES
    ('00000000-0000-0000-0000-000000000001', 'advertiser'),
    ('00000000-0000-0000-0000-000000000002', 'hoster'),
    ('00000000-0000-0000-0000-000000000003', 'hoster'),
    ('00000000-0000-0000-0000-000000000005', 'admin');
INSERT INTO ad_sets (id, campaign_id, name) SELECT md5('set' || c)::uuid, md5('campaign' || c)::uuid, 'Set' FROM generate_series(0, 199) c;
INSERT INTO ads (id, ad_set_id, name, kind, title, click_url, price_impression)
SELECT md5('ad' || c || '-' || a)::uuid, md5('set' || c)::uuid, 'Ad', 'text', 'Title', 'https://example.com/', 1000
FROM generate_series(0, 199) c, generate_series(0, 4) a;
-- History: 100 settled epochs, each debiting every campaign, as after a day of settlements.
INSERT INTO mirror_settlements (chain_id, block_number, log_index, tx_hash, epoch, root, claimable_at)
SELECT 31337, 1000 + e, 0, '\x02', e, sha256(e::text::bytea), 0 FROM generate_series(1, 100) e;
INSERT INTO mirror_settlement_debits (chain_id, block_number, log_index, position, campaign_id, amount)
SELECT 31337, 1000 + e, 0, c, sha256(('campaign' || c)::bytea), 1000
FROM generate_series(1, 100) e, generate_series(0, 199) c;
-- What was seeded gets statistics, as a running system's tables have. Billed events get
-- none: a running system's describe a large table, and without any the planner sizes the
-- table by its pages as it grows; statistics taken while it is empty would mislead it for
-- the whole run.
ANALYZE users, brands, campaigns, ad_sets, ads, mirror_campaign_events, mirror_settlements,
    mirror_settlement_debits, mirror_campaign_debited;
"#;

async fn seed(pool: &PgPool, hoster: &PrivateKeySigner, witness: &PrivateKeySigner) -> anyhow::Result<Uuid> {
    let seed = format!(
        "{}{}{SEED}",
        support::campaigns_sql(CAMPAIGNS),
        support::escrows_sql(CAMPAIGNS)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed))
        .execute(pool)
        .await
        .context("seeding campaigns")?;
    let hoster_id: Uuid = sqlx::query_scalar(
        "INSERT INTO nodes (owner_id, address, name) VALUES ('00000000-0000-0000-0000-000000000002', $1, 'hoster') RETURNING id",
    )
    .bind(hoster.address().as_slice())
    .fetch_one(pool)
    .await?;
    sqlx::query("INSERT INTO nodes (owner_id, address, name, can_witness) VALUES ('00000000-0000-0000-0000-000000000003', $1, 'witness', true)")
        .bind(witness.address().as_slice())
        .execute(pool)
        .await?;
    Ok(hoster_id)
}

/// Attributes every advertiser owning the bench's campaigns to an active affiliate, as the
/// program does: the affiliate applies, an admin approves it, it makes a code, and each
/// advertiser is attributed with that code (as when it creates a campaign). Returns how many
/// advertisers were attributed.
async fn attribute_advertisers(pool: &PgPool, terms: &Terms) -> anyhow::Result<usize> {
    affiliates::apply(pool, terms, AFFILIATE, "I bring advertisers").await?;
    let approved = affiliates::change_status(pool, AFFILIATE, Status::Active, ADMIN, "approved for the bench").await?;
    ensure!(approved.status == Status::Active, "affiliate approved");
    let code = affiliates::create_code(pool, AFFILIATE).await?;
    let advertisers: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT b.owner_id FROM campaigns c JOIN brands b ON b.id = c.brand_id ORDER BY b.owner_id",
    )
    .fetch_all(pool)
    .await?;
    let mut tx = pool.begin().await?;
    for advertiser in &advertisers {
        let by = affiliates::attribute(
            &mut tx,
            terms,
            *advertiser,
            &code,
            Channel::Campaign,
            OffsetDateTime::now_utc(),
        )
        .await?;
        ensure!(by == AFFILIATE, "attributed to the bench's affiliate");
    }
    tx.commit().await?;
    Ok(advertisers.len())
}

/// Signed batch bodies of fresh tickets, one impression each, for random viewers.
fn batches(
    state: &AppState,
    ads: &[(Uuid, Uuid)],
    hoster_id: Uuid,
    hoster: &PrivateKeySigner,
    witness: &PrivateKeySigner,
) -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    let mut prices = UnitPrices::default();
    prices.set(EventType::Impression, Some(Amount(1000)));
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let issued_ms = now as u64 * 1000 - (BATCHES * BATCH / 50) as u64;
    (0..BATCHES as u64)
        .map(|sequence| {
            let receipts: Vec<Receipt> = (0..BATCH)
                .map(|i| {
                    let (campaign_id, ad_id) = ads[rng.random_range(0..ads.len())];
                    let viewer = format!("viewer-{}", rng.random::<u64>());
                    let ticket = Ticket {
                        // Time-ordered, as the ad server issues them: here as if issued at
                        // 50 a millisecond, in the order the batches are then sent.
                        id: uuid::Builder::from_unix_timestamp_millis(
                            issued_ms + (sequence * BATCH as u64 + i as u64) / 50,
                            &rng.random(),
                        )
                        .into_uuid(),
                        ad_id,
                        campaign_id,
                        hoster_node_id: hoster_id,
                        // As decisions issue them: billing writes each event's placement.
                        placement_id: Some(uuid::Uuid::from_u128(7)),
                        viewer: Some(adescrow::adserver::serving::ticket::viewer_hash(&viewer)),
                        prices,
                        issued_at: now,
                        expires_at: now + 3600,
                    };
                    Receipt {
                        ticket: state.ad_server.tickets().issue(&ticket),
                        event: EventType::Impression,
                        at: OffsetDateTime::from_unix_timestamp(now).unwrap(),
                        viewer: Some(viewer),
                        order_ref: None,
                    }
                })
                .collect();
            let confirmed = Confirmations::from_fn(receipts.len(), |_| true);
            let message = batch::message(
                hoster.address(),
                Some((witness.address(), &confirmed)),
                sequence,
                batch::receipts_hash(&receipts),
            );
            let digest = batch::signing_hash(CHAIN_ID, ESCROW, &message);
            let sign =
                |key: &PrivateKeySigner| format!("0x{}", hex::encode(key.sign_hash_sync(&digest).unwrap().as_bytes()));
            let body = json!({
                "chainId": CHAIN_ID,
                "hoster": hoster.address(),
                "witness": witness.address(),
                "sequence": sequence,
                "receipts": receipts.iter().map(|r| json!({
                    "ticket": r.ticket, "event": "impression", "at": now, "viewer": r.viewer,
                })).collect::<Vec<_>>(),
                "hosterSignature": sign(hoster),
                "witnessSignature": sign(witness),
                "confirmed": format!("0x{}", hex::encode(confirmed.as_bytes())),
            });
            serde_json::to_vec(&body).unwrap()
        })
        .collect()
}

/// The counts of a batch answer; serde skips the per-receipt results.
#[derive(serde::Deserialize)]
struct Counts {
    billed: usize,
    refused: usize,
}

/// Microseconds to recover both signers of one batch digest.
fn k256_per_batch(hoster: &PrivateKeySigner, witness: &PrivateKeySigner) -> f64 {
    let confirmed = Confirmations::from_fn(1000, |_| true);
    let message = batch::message(
        hoster.address(),
        Some((witness.address(), &confirmed)),
        1,
        alloy::primitives::B256::repeat_byte(7),
    );
    let digest = batch::signing_hash(CHAIN_ID, ESCROW, &message);
    let signatures: Vec<String> = [hoster, witness]
        .iter()
        .map(|key| format!("0x{}", hex::encode(key.sign_hash_sync(&digest).unwrap().as_bytes())))
        .collect();
    let rounds = 500;
    let started = Instant::now();
    for _ in 0..rounds {
        for signature in &signatures {
            std::hint::black_box(batch::recover(digest, signature).unwrap());
        }
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// The billed events' columns, as billing writes them.
const BILLED_COLUMNS: &str = "ticket_id, event, campaign_id, ad_id, hoster_node_id, witness_node_id, price, occurred_at, \
    batch_id, position, viewer_hash, frequency_key, order_ref, hoster_share, platform_share, witness_share, viewer_share, \
    viewer_payee, placement_id";

/// The commissions the billed events call for, and their total: one per batch and affiliate,
/// the floor of the affiliate's rate of the platform's share of its advertisers' campaigns
/// in the batch, where that is not zero.
async fn commissions_due(pool: &PgPool) -> anyhow::Result<(i64, String)> {
    Ok(sqlx::query_as(
        "WITH due AS (
             SELECT floor(sum(e.platform_share) * a.rate_bps / 10000) AS amount
             FROM billed_events e JOIN campaigns c ON c.id = e.campaign_id JOIN brands b ON b.id = c.brand_id
             JOIN affiliate_attributions t ON t.advertiser_id = b.owner_id
             JOIN affiliates a ON a.user_id = t.affiliate_id AND a.status = 'active'
             GROUP BY e.batch_id, a.user_id, a.rate_bps)
         SELECT count(*) FILTER (WHERE amount > 0), coalesce(sum(amount), 0)::text FROM due",
    )
    .fetch_one(pool)
    .await?)
}

/// Rows per second of writing the billed rows again with nothing but `COPY` and a commit.
async fn raw_insert_rate(pool: &PgPool) -> anyhow::Result<f64> {
    sqlx::raw_sql("CREATE TABLE raw_billed_events (LIKE billed_events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let mut conn = pool.acquire().await?;
    let mut out = conn
        .copy_out_raw(&format!(
            "COPY (SELECT {BILLED_COLUMNS} FROM billed_events ORDER BY batch_id, position) TO STDOUT"
        ))
        .await?;
    let mut text = Vec::new();
    while let Some(chunk) = out.next().await {
        text.extend_from_slice(&chunk?);
    }
    drop(out);
    drop(conn);
    // Batches of BATCH lines, in the order billing wrote them.
    let mut batches = VecDeque::new();
    let mut lines = text.split_inclusive(|b| *b == b'\n').peekable();
    while lines.peek().is_some() {
        batches.push_back(lines.by_ref().take(BATCH).flatten().copied().collect::<Vec<u8>>());
    }
    ensure!(batches.len() == BATCHES, "{} raw batches", batches.len());
    let queue = Arc::new(Mutex::new(batches));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (pool, queue) = (pool.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(rows) = queue.lock().await.pop_front() else {
                    break;
                };
                let mut tx = pool.begin().await?;
                let mut copy = tx
                    .copy_in_raw(&format!("COPY raw_billed_events ({BILLED_COLUMNS}) FROM STDIN"))
                    .await?;
                copy.send(rows).await?;
                copy.finish().await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_billed_events")
        .fetch_one(pool)
        .await?;
    ensure!(written as usize == BATCHES * BATCH, "{written} raw rows");
    Ok(written as f64 / elapsed)
}

/// How long accrual may take before the bench gives up on it, and how often it reports
/// its progress meanwhile.
const ACCRUAL_LIMIT: Duration = Duration::from_secs(600);
const ACCRUAL_PROGRESS: Duration = Duration::from_secs(60);

/// What one accrual over everything billed did.
enum Accrual {
    /// Accrued everything and left the ledger consistent.
    Done { commissions: usize, seconds: f64 },
    /// Still running at the limit: `posted` commission postings written in its open page.
    Unfinished { posted: i64, seconds: f64 },
}

/// Commission postings written since the last receipt batch's, committed or not (posting
/// ids are drawn outside transactions): how far an accrual whose page is still open got.
async fn postings_drawn(pool: &PgPool) -> anyhow::Result<i64> {
    let drawn: Option<i64> = sqlx::query_scalar(
        "SELECT pg_sequence_last_value(pg_get_serial_sequence('ledger_postings', 'id')::regclass)
                - (SELECT max(id) FROM ledger_postings WHERE source = 'receipt_batch')",
    )
    .fetch_one(pool)
    .await?;
    Ok(drawn.unwrap_or(0))
}

/// Runs `commissions::accrue` once over every billed batch (up to [`ACCRUAL_LIMIT`]), then
/// checks the ledger: the commissions are the ones the billed events call for (`expected`,
/// from [`commissions_due`]), each with its held transfer out of the platform's share of
/// that batch's posting and, beside it, the billed spend of each campaign it was earned on;
/// the platform keeps what billing credited less the commissions; the cursor is past the
/// last batch; a second accrual writes nothing.
async fn accrue_all(pool: &PgPool, terms: &Terms, expected: (i64, String)) -> anyhow::Result<Accrual> {
    let started = Instant::now();
    let mut accrual = Box::pin(commissions::accrue(pool, CHAIN_ID, terms, OffsetDateTime::now_utc()));
    let limit = tokio::time::sleep(ACCRUAL_LIMIT);
    tokio::pin!(limit);
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + ACCRUAL_PROGRESS, ACCRUAL_PROGRESS);
    let mut last = 0;
    let accrued = loop {
        tokio::select! {
            accrued = &mut accrual => break Some(accrued),
            () = &mut limit => break None,
            _ = progress.tick() => {
                let posted = postings_drawn(pool).await?;
                println!(
                    "  accrual after {:.0} s: {posted} commissions posted ({:.0}/s over the last {} s)",
                    started.elapsed().as_secs_f64(),
                    (posted - last) as f64 / ACCRUAL_PROGRESS.as_secs_f64(),
                    ACCRUAL_PROGRESS.as_secs()
                );
                last = posted;
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    // Cancelled at the limit, its open page is rolled back.
    drop(accrual);
    let Some(accrued) = accrued else {
        return Ok(Accrual::Unfinished {
            posted: postings_drawn(pool).await?,
            seconds,
        });
    };
    let commissions = accrued?;

    let rate = i64::from(terms.default_rate_bps);
    let (expected, expected_total) = expected;
    let (written, written_total): (i64, String) =
        sqlx::query_as("SELECT count(*), coalesce(sum(amount), 0)::text FROM affiliate_commissions")
            .fetch_one(pool)
            .await?;
    ensure!(
        commissions as i64 == written && written == expected && written_total == expected_total,
        "accrued {commissions}, written {written} totalling {written_total}; billing calls for {expected} totalling {expected_total}"
    );
    let broken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM affiliate_commissions c
         WHERE c.affiliate_id <> $1 OR c.rate_bps <> $2 OR c.amount <> floor(c.platform_share * c.rate_bps / 10000)
            OR (SELECT (sum(m.spend), sum(m.platform_share)) FROM affiliate_commission_campaigns m
                WHERE m.batch_id = c.batch_id AND m.affiliate_id = c.affiliate_id)
               IS DISTINCT FROM (c.spend, c.platform_share)
            OR NOT EXISTS (SELECT 1 FROM ledger_postings s
                           WHERE s.id = c.source_posting AND s.source = 'receipt_batch'
                             AND s.source_id = c.batch_id::text AND s.token = c.token)
            OR NOT EXISTS (SELECT 1 FROM ledger_postings p
                           WHERE p.id = c.posting_id AND p.source = 'transfer' AND p.token = c.token
                             AND p.source_id = 'commission:' || c.batch_id || ':' || c.affiliate_id)
            OR NOT EXISTS (SELECT 1 FROM ledger_holds h
                           WHERE h.posting_id = c.posting_id AND h.reason = 'commission_hold'
                             AND h.settled_after = c.source_posting)
            OR (SELECT count(*) FROM ledger_entries e
                WHERE e.posting_id = c.posting_id AND e.role = 'affiliate' AND e.payee = $3
                  AND e.amount = c.amount AND e.hold_id IS NOT NULL) <> 1
            OR (SELECT count(*) FROM ledger_entries e
                WHERE e.posting_id = c.posting_id AND e.role = 'platform' AND e.payee = $4
                  AND e.amount = -c.amount AND e.hold_id IS NULL) <> 1
            OR (SELECT count(*) FROM ledger_entries e WHERE e.posting_id = c.posting_id) <> 2",
    )
    .bind(AFFILIATE)
    .bind(rate as i32)
    .bind(Address::repeat_byte(0x44).as_slice())
    .bind(terms.platform.as_slice())
    .fetch_one(pool)
    .await?;
    ensure!(
        broken == 0,
        "{broken} commissions without their ledger posting as accrued"
    );
    // Every campaign a commission's batch billed is listed with that batch's spend of it,
    // and nothing else is.
    let (groups, matching, strays): (i64, i64, i64) = sqlx::query_as(
        "WITH billed AS (
             SELECT batch_id, campaign_id, sum(price) AS spend, sum(platform_share) AS platform_share
             FROM billed_events WHERE batch_id IN (SELECT batch_id FROM affiliate_commissions)
             GROUP BY batch_id, campaign_id)
         SELECT (SELECT count(*) FROM billed),
                (SELECT count(*) FROM billed b JOIN affiliate_commission_campaigns m
                     ON m.batch_id = b.batch_id AND m.campaign_id = b.campaign_id AND m.affiliate_id = $1
                    AND m.spend = b.spend AND m.platform_share = b.platform_share),
                (SELECT count(*) FROM affiliate_commission_campaigns m
                 WHERE NOT EXISTS (SELECT 1 FROM billed b WHERE b.batch_id = m.batch_id AND b.campaign_id = m.campaign_id))",
    )
    .bind(AFFILIATE)
    .fetch_one(pool)
    .await?;
    ensure!(
        matching == groups && strays == 0,
        "{groups} billed campaigns of commissioned batches: {matching} listed with their spend, {strays} listed not billed"
    );
    let platform_consistent: bool = sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE payee = $1 AND role = 'platform')
              = (SELECT coalesce(sum(platform_share), 0) FROM billed_events)
                - (SELECT coalesce(sum(amount), 0) FROM affiliate_commissions)",
    )
    .bind(terms.platform.as_slice())
    .fetch_one(pool)
    .await?;
    ensure!(
        platform_consistent,
        "the platform's balance is not billing's credits less the commissions"
    );
    let cursor_at_end: bool = sqlx::query_scalar(
        "SELECT position = (SELECT max(id) FROM ledger_postings WHERE source = 'receipt_batch')
         FROM program_cursors WHERE name = 'affiliate_accrual'",
    )
    .fetch_one(pool)
    .await?;
    ensure!(cursor_at_end, "the accrual cursor is past the last billed batch");
    let again = commissions::accrue(pool, CHAIN_ID, terms, OffsetDateTime::now_utc()).await?;
    ensure!(again == 0, "a second accrual wrote {again} commissions");
    Ok(Accrual::Done { commissions, seconds })
}

/// The advertiser redeems a free trial of [`TRIAL`] impressions and a 20% fee discount,
/// through the promotions' own functions, on its first campaign.
async fn redeem_promotions(pool: &PgPool) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let campaign: Uuid = sqlx::query_scalar("SELECT md5('campaign0')::uuid")
        .fetch_one(pool)
        .await?;
    for (code, offer) in [
        ("BENCH-TRIAL", Offer::FreeTrial { impressions: TRIAL }),
        ("BENCH-DISCOUNT", Offer::FeeDiscount { bps: 2_000, days: 30 }),
    ] {
        let new = NewPromotion {
            code: Some(PromoCode::parse(code)?),
            name: Name::parse(code)?,
            offer,
            limits: Limits {
                per_user: 1,
                ..Limits::default()
            },
            starts_at: now - time::Duration::hours(1),
            ends_at: now + time::Duration::days(30),
            publish: true,
        };
        promos::create(pool, new, ADMIN, now).await?;
        promos::redeem(pool, CHAIN_ID, ADVERTISER, code, campaign, now).await?;
    }
    Ok(())
}

/// Checks that billing waived the fee on exactly the trial's impressions, and reports what
/// the promotions waived.
async fn check_waivers(pool: &PgPool) -> anyhow::Result<()> {
    let (trial, waived, events, total): (i64, i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT trial_used FROM promo_redemptions WHERE trial_impressions IS NOT NULL)::bigint,
                (SELECT coalesce(sum(impressions), 0) FROM promo_waivers)::bigint,
                (SELECT coalesce(sum(events), 0) FROM promo_waivers)::bigint,
                (SELECT coalesce(sum(waived), 0) FROM promo_waivers)::text",
    )
    .fetch_one(pool)
    .await?;
    ensure!(
        trial == i64::from(TRIAL) && waived == trial,
        "the trial counted {trial} and waived {waived} impressions, not {TRIAL}"
    );
    println!(
        "promotions: the trial waived the platform's fee on {trial} impressions, the discount 20% of it on {}; {total} base units waived",
        events - trial
    );
    Ok(())
}

async fn run(db_url: &Url) -> anyhow::Result<bool> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(db_url.as_str())
        .await?;
    MIGRATOR.run(&pool).await?;
    let (hoster, witness) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let hoster_id = seed(&pool, &hoster, &witness).await?;
    let state = AppState::new(support::config(ESCROW, BATCH), pool.clone())?;
    let terms = state.growth.affiliates.clone();
    let attributed = attribute_advertisers(&pool, &terms).await?;
    ensure!(attributed > 0, "the campaigns' advertisers are attributed");
    redeem_promotions(&pool).await?;
    state.ad_server.refresh().await?;
    ensure!(
        state.ad_server.node_by_address(hoster.address()).is_some(),
        "bench hoster is active"
    );

    let k256 = k256_per_batch(&hoster, &witness);
    println!("k256 verification: {k256:.0} µs per batch (two signatures)");

    let ads: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT s.campaign_id, a.id FROM ads a JOIN ad_sets s ON s.id = a.ad_set_id")
            .fetch_all(&pool)
            .await?;
    ensure!(ads.len() == CAMPAIGNS * ADS_PER_CAMPAIGN, "seeded ads");
    let bodies = batches(&state, &ads, hoster_id, &hoster, &witness);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>()).await
    });
    let url = format!("http://{address}/v1/receipts");
    let client = reqwest::Client::new();
    // Sent in sequence order, as a node would.
    let queue = Arc::new(Mutex::new(VecDeque::from(bodies)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, queue, url) = (client.clone(), queue.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(body) = queue.lock().await.pop_front() else {
                    break;
                };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "batch failed: {}",
                    response.text().await?
                );
                // Only the counts: the client's parsing is not the server's figure.
                let answer: Counts = response.json().await?;
                ensure!(answer.billed == BATCH, "not all billed: {} refused", answer.refused);
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.abort();
    let durable: i64 = sqlx::query_scalar("SELECT count(*) FROM billed_events")
        .fetch_one(&pool)
        .await?;
    ensure!(durable as usize == BATCHES * BATCH, "{durable} billed rows");
    check_waivers(&pool).await?;
    latencies.sort();
    let per_sec = durable as f64 / elapsed;
    println!(
        "witnessed impressions: {per_sec:.0}/s accepted and durable ({BATCHES} batches of {BATCH}, {CONCURRENCY} in flight, {elapsed:.1} s; batch p50 {:.0} ms, p99 {:.0} ms) (target >= {TARGET_PER_SEC:.0}/s)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    let raw = raw_insert_rate(&pool).await?;
    println!(
        "raw COPY of the same rows: {raw:.0}/s ({BATCHES} commits of {BATCH}, {CONCURRENCY} connections); billing runs at {:.2} of it",
        per_sec / raw
    );
    let due = commissions_due(&pool).await?;
    let accrued = match accrue_all(&pool, &terms, due.clone()).await? {
        Accrual::Done { commissions, seconds } => {
            println!(
                "commission accrual, outside billing from the ledger: {commissions} commissions on {durable} receipts of {BATCHES} batches in {seconds:.1} s: {:.0} commissions/s, {:.0} billed receipts/s covered ({attributed} advertiser(s) attributed at {} bps; ledger consistent)",
                commissions as f64 / seconds,
                durable as f64 / seconds,
                terms.default_rate_bps,
            );
            true
        }
        Accrual::Unfinished { posted, seconds } => {
            println!(
                "commission accrual, outside billing from the ledger: NOT FINISHED in {seconds:.0} s: {posted} of the {} commissions due posted ({:.0}/s), its first page still open; ledger not checked",
                due.0,
                posted as f64 / seconds,
            );
            false
        }
    };
    pool.close().await;
    Ok(per_sec >= TARGET_PER_SEC && accrued)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("error").init();
    support::with_database(DATABASE, |url| async move { run(&url).await }).await
}
