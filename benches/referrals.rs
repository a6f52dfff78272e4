//! A referrer's snapshot, in process against a real Postgres: `bonuses::snapshot` for one
//! referrer with 10,000 referrals, p50 and p99 of 200 calls (after a few warm-up calls), the
//! median of three rounds reported against the target.
//!
//! The referrals are a realistic mix, written in bulk with SQL: signed up over 13 months,
//! a third through links; most from networks of their own, a tenth from networks shared
//! with other referees (only the first counts), some from networks the referrer signs in
//! from (recently or long ago), some with none; some referees disabled. Two in five have
//! ledger activity, posted through `ledger::post` as receipt-batch postings: advertisers whose
//! campaigns were billed (three campaigns a posting) and hosters credited with their
//! earnings, in amounts either side of the rule's thresholds; 4,000 postings. The rules in
//! force are a new version with a token rule paid from a program budget (created through
//! `rules::create`), and the referrer's bonuses have been awarded by `bonuses::recompute`,
//! some released and the rest held on a budget that ran out, so the snapshot lists them as a
//! real one would. Around the referrer, 300 other referrers with 30,000 referrals fill the
//! same tables. The snapshot is taken eight days after the ledger activity (the cooldown is
//! seven), so most activity counts and the newest referees are still cooling down.
//!
//! ```text
//! cargo bench --bench referrals
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_referrals`. Exits non-zero when the
//! target is missed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
// A bench binary reports on stdout.
#![allow(clippy::print_stdout)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adescrow::money::Amount;
use adescrow::money::ledger::{self, Party, Posting, Source};
use adescrow::platform::db::MIGRATOR;
use adescrow::programs::referrals;
use adescrow::programs::referrals::assess::Status;
use adescrow::programs::referrals::bonuses::{self, BonusState, Snapshot};
use adescrow::programs::referrals::rules::{self, NewRules, TokenRule};
use alloy::primitives::Address;
use anyhow::{Context as _, ensure};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

use support::{CHAIN_ID, percentile};

const DATABASE: &str = "adescrow_bench_referrals";
const REFERRALS: i64 = 10_000;
/// Receipt-batch postings of the referees' activity.
const POSTINGS: usize = 4_000;
/// Postings written per transaction while seeding.
const POSTINGS_PER_TX: usize = 100;
/// Campaigns a posting bills.
const CAMPAIGNS_PER_POSTING: usize = 3;
const BACKGROUND_REFERRERS: i64 = 300;
const BACKGROUND_REFERRALS: i64 = 30_000;
const WARMUP: usize = 5;
const SAMPLES: usize = 200;
const ROUNDS: usize = 3;
const TARGET_P99: Duration = Duration::from_millis(50);

const REFERRER: Uuid = Uuid::from_u128(1);
const ADMIN: Uuid = Uuid::from_u128(0xad);
const TOKEN: Address = Address::repeat_byte(0x70);
const PLATFORM: Address = Address::repeat_byte(0xfa);
/// A hoster nobody referred, credited with half of the batches.
const OUTSIDE_HOSTER: Address = Address::repeat_byte(0x4e);
const BONUS: u128 = 100;
/// The budget covers this many bonuses; later ones wait for it.
const FUNDED_BONUSES: u128 = 800;

/// Referee `i` (0 to 9,999): `md5('referee' || i)`, address the first 20 bytes of
/// `sha256('referee' || i)`, signed up (and its account created) `(10000 - i) * 57` minutes
/// before the snapshot `$1`. Networks: every 50th (from 7) none; every 50th from 13 one of the
/// five the referrer signs in from; every 50th from 29 one of five it used a year ago; every
/// 10th from 3 otherwise one of 200 shared ones; the rest their own. Every 40th (from 5) is
/// disabled ten days after signing up. Every third came through a link.
const REFEREES: &str = r#"
WITH n AS (
    SELECT i, md5('referee' || i)::uuid AS id, substring(sha256(('referee' || i)::bytea) FROM 1 FOR 20) AS address,
           $1::timestamptz - (10000 - i) * interval '57 minutes' AS at
    FROM generate_series(0, 9999) i)
INSERT INTO users (id, address, created_at, disabled_at)
SELECT id, address, at, CASE WHEN i % 40 = 5 THEN least(at + interval '10 days', $1 - interval '1 minute') END FROM n
"#;

const REFERRALS_SQL: &str = r#"
INSERT INTO referrals (referee_id, referrer_id, channel, network, referred_at)
SELECT md5('referee' || i)::uuid, $2, CASE WHEN i % 3 = 0 THEN 'link' ELSE 'code' END::referral_channel,
       CASE WHEN i % 50 = 7 THEN NULL
            WHEN i % 50 = 13 THEN sha256(('referrer-home-' || i % 5)::bytea)
            WHEN i % 50 = 29 THEN sha256(('referrer-old-' || i % 5)::bytea)
            WHEN i % 10 = 3 THEN sha256(('shared-' || (i / 10) % 200)::bytea)
            ELSE sha256(('referee-network-' || i)::bytea) END,
       $1::timestamptz - (10000 - i) * interval '57 minutes'
FROM generate_series(0, 9999) i
"#;

/// The referrer: its code, and where it signed in from: five home networks all along, five
/// it stopped using about a year ago, and twenty seen once or twice while travelling.
const REFERRER_SQL: &[&str] = &[
    r#"INSERT INTO users (id, address, created_at) VALUES ($2, '\x0101010101010101010101010101010101010101', $1 - interval '500 days')"#,
    r#"INSERT INTO referral_codes (user_id, code, uses, created_at) VALUES ($2, 'K7M2QRST', 10000, $1 - interval '500 days')"#,
    r#"INSERT INTO sign_in_networks (user_id, network, first_seen, last_seen)
       SELECT $2, sha256(('referrer-home-' || k)::bytea), $1 - interval '500 days', $1 - interval '1 hour'
       FROM generate_series(0, 4) k
       UNION ALL
       SELECT $2, sha256(('referrer-old-' || k)::bytea), $1 - interval '500 days', $1 - interval '350 days'
       FROM generate_series(0, 4) k
       UNION ALL
       SELECT $2, sha256(('referrer-travel-' || k)::bytea), $1 - k * interval '19 days',
              $1 - k * interval '19 days' + interval '2 days'
       FROM generate_series(0, 19) k"#,
];

/// Every 5th referee from 1 advertises: a brand and a running campaign in the token.
const ADVERTISERS: &[&str] = &[
    r#"INSERT INTO brands (id, owner_id, name, daily_budget, monthly_budget, time_zone)
       SELECT md5('brand' || i)::uuid, md5('referee' || i)::uuid, 'Brand ' || i, 1e30, 1e30, 'UTC'
       FROM generate_series(1, 9999, 5) i"#,
    r#"INSERT INTO campaigns (id, brand_id, name, token, chain_campaign_id, starts_at, ends_at, status)
       SELECT md5('campaign' || i)::uuid, md5('brand' || i)::uuid, 'Campaign ' || i,
              '\x7070707070707070707070707070707070707070', sha256(('campaign' || i)::bytea),
              $1 - interval '400 days', $1 + interval '30 days', 'running'
       FROM generate_series(1, 9999, 5) i"#,
];

/// Other referrers and their referees, some of them from the referrer's shared networks,
/// each with a sign-in network.
const BACKGROUND: &[&str] = &[
    r#"INSERT INTO users (id, address, created_at)
       SELECT md5('bg-referrer' || j)::uuid, substring(sha256(('bg-referrer' || j)::bytea) FROM 1 FOR 20),
              $1 - interval '600 days'
       FROM generate_series(0, 299) j"#,
    r#"INSERT INTO users (id, address, created_at)
       SELECT md5('bg-referee' || j)::uuid, substring(sha256(('bg-referee' || j)::bytea) FROM 1 FOR 20),
              $1 - j * interval '17 minutes'
       FROM generate_series(0, 29999) j"#,
    r#"INSERT INTO referrals (referee_id, referrer_id, channel, network, referred_at)
       SELECT md5('bg-referee' || j)::uuid, md5('bg-referrer' || j % 300)::uuid, 'code',
              CASE WHEN j % 7 = 0 THEN sha256(('shared-' || j % 200)::bytea)
                   ELSE sha256(('bg-network-' || j % 20000)::bytea) END,
              $1 - j * interval '17 minutes'
       FROM generate_series(0, 29999) j"#,
    r#"INSERT INTO sign_in_networks (user_id, network, first_seen, last_seen)
       SELECT md5('bg-referee' || j)::uuid, sha256(('bg-network-' || j % 20000)::bytea),
              $1 - j * interval '17 minutes', $1 - j * interval '7 minutes'
       FROM generate_series(0, 29999) j"#,
];

/// The program budget the token rule pays from (`$1`), and its opening and funding (`$1`:
/// the amount) on chain as the chain mirror sees them, by the treasury.
const BUDGET: &[&str] = &[
    r#"INSERT INTO escrow_accounts (id, kind, chain_escrow_id, token, owner, ends_at, name)
       VALUES ($1, 'program', sha256('referral budget'::bytea), '\x7070707070707070707070707070707070707070',
               '\x7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e', to_timestamp(4000000000), 'Referral rewards')"#,
    r#"INSERT INTO mirror_campaign_events (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, token, amount, remaining, end_time)
       VALUES (31337, 1, 0, '\x01', 'opened', sha256('referral budget'::bytea), '\x7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e',
               '\x7070707070707070707070707070707070707070', NULL, NULL, 4000000000),
              (31337, 1, 1, '\x01', 'funded', sha256('referral budget'::bytea), '\x7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e',
               NULL, $1::numeric, $1::numeric, NULL)"#,
];

/// Runs a seeding statement with the snapshot's time as `$1` and, if it uses it, the
/// referrer as `$2`.
async fn execute(pool: &PgPool, sql: &'static str, at: OffsetDateTime) -> anyhow::Result<()> {
    let uses_at = sql.contains("$1");
    let uses_referrer = sql.contains("$2");
    let mut query = sqlx::query(sql);
    if uses_at {
        query = query.bind(at);
    }
    if uses_referrer {
        query = query.bind(REFERRER);
    }
    query
        .execute(pool)
        .await
        .with_context(|| format!("seeding: {}", sql.trim()))?;
    Ok(())
}

/// The referees' activity, as billing would post it: each posting bills three campaigns of
/// advertising referees (each campaign in six postings, 50 to 349 base units a time) and
/// credits its hoster (a hosting referee for every other posting, each once) with nine
/// tenths of it and the platform with the rest.
async fn activity(pool: &PgPool) -> anyhow::Result<()> {
    let campaigns: Vec<(i32, Uuid)> =
        sqlx::query_as("SELECT i, md5('campaign' || i)::uuid FROM generate_series(1, 9999, 5) i ORDER BY i")
            .fetch_all(pool)
            .await?;
    let hosters: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT substring(sha256(('referee' || i)::bytea) FROM 1 FOR 20) FROM generate_series(2, 9999, 5) i ORDER BY i",
    )
    .fetch_all(pool)
    .await?;
    let mut posted = 0;
    while posted < POSTINGS {
        let mut tx = pool.begin().await?;
        for j in posted..(posted + POSTINGS_PER_TX).min(POSTINGS) {
            let mut posting = Posting::default();
            let mut total = 0u128;
            for k in 0..CAMPAIGNS_PER_POSTING {
                let (i, campaign) = campaigns[(CAMPAIGNS_PER_POSTING * j + k) % campaigns.len()];
                let price = 50 + (i as u128 * 37 + j as u128 * 11) % 300;
                posting.spend(campaign, Amount(price));
                total += price;
            }
            let hoster = if j % 2 == 0 {
                Address::from_slice(&hosters[(j / 2) % hosters.len()])
            } else {
                OUTSIDE_HOSTER
            };
            let earned = total * 9 / 10;
            posting.earn(Party::Hoster, hoster, Amount(earned));
            posting.earn(Party::Platform, PLATFORM, Amount(total - earned));
            // Billing's batches are numbered; so are these.
            let source_id = (j + 1).to_string();
            ledger::post(
                &mut tx,
                CHAIN_ID,
                Source::ReceiptBatch,
                &source_id,
                &BTreeMap::from([(TOKEN, posting)]),
            )
            .await?;
        }
        tx.commit().await?;
        posted = (posted + POSTINGS_PER_TX).min(POSTINGS);
    }
    Ok(())
}

/// Seeds everything; returns the version of the rules in force.
async fn seed(pool: &PgPool, at: OffsetDateTime) -> anyhow::Result<i32> {
    sqlx::query(
        r#"INSERT INTO users (id, address, created_at) VALUES ($1, '\xadadadadadadadadadadadadadadadadadadadad', $2)"#,
    )
    .bind(ADMIN)
    .bind(at - time::Duration::days(900))
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, 'admin')")
        .bind(ADMIN)
        .execute(pool)
        .await?;
    for sql in REFERRER_SQL {
        execute(pool, sql, at).await?;
    }
    execute(pool, REFEREES, at).await?;
    execute(pool, REFERRALS_SQL, at).await?;
    for sql in ADVERTISERS {
        execute(pool, sql, at).await?;
    }
    for sql in BACKGROUND {
        execute(pool, sql, at).await?;
    }
    let budget = Uuid::from_u128(0xb0);
    sqlx::query(BUDGET[0])
        .bind(budget)
        .execute(pool)
        .await
        .context("seeding the budget")?;
    sqlx::query(BUDGET[1])
        .bind((BONUS * FUNDED_BONUSES).to_string())
        .execute(pool)
        .await
        .context("funding the budget")?;
    let new = NewRules {
        milestone: 3,
        cooldown: Duration::from_secs(7 * 86_400),
        network_window: Duration::from_secs(30 * 86_400),
        require_network: true,
        tokens: vec![TokenRule {
            token: TOKEN,
            min_billed: Amount(1_000),
            min_earned: Amount(500),
            bonus: Amount(BONUS),
            budget_id: budget,
        }],
    };
    let mut tx = pool.begin().await?;
    let rules = rules::create(&mut tx, &new, ADMIN).await?;
    tx.commit().await?;
    activity(pool).await?;
    // The programs role folds what billing posted into the referees' activity.
    let moves = referrals::activity::fold(pool).await?;
    ensure!(moves > 0, "the referees' activity is folded");
    // A running system's tables have statistics, and autovacuum's visibility maps.
    sqlx::raw_sql(
        "VACUUM ANALYZE users, referrals, sign_in_networks, referral_codes, brands, campaigns, escrow_accounts, ledger_postings,
                 ledger_entries, ledger_holds, referral_rules, referral_rule_tokens, referral_activity,
                 referral_activity_totals",
    )
    .execute(pool)
    .await?;
    Ok(rules.version)
}

/// The snapshot describes all 10,000 referrals, each counted once, under the bench's rules.
fn check(snapshot: &Snapshot, version: i32, bonuses: usize) -> anyhow::Result<()> {
    let counted = snapshot.qualified + snapshot.pending + snapshot.disqualified;
    ensure!(
        snapshot.referrals == REFERRALS && counted == REFERRALS,
        "snapshot of {} referrals, {} qualified + {} pending + {} disqualified",
        snapshot.referrals,
        snapshot.qualified,
        snapshot.pending,
        snapshot.disqualified
    );
    ensure!(
        snapshot.qualified > 0 && snapshot.pending > 0 && snapshot.disqualified > 0,
        "a mix of outcomes"
    );
    let by_reason: i64 = snapshot.by_reason.iter().map(|r| r.count).sum();
    ensure!(by_reason == snapshot.pending + snapshot.disqualified, "reasons add up");
    ensure!(snapshot.rule_version == version, "the bench's rules are in force");
    ensure!(
        snapshot.bonuses.len() == bonuses,
        "{} bonuses listed",
        snapshot.bonuses.len()
    );
    Ok(())
}

async fn run(db_url: &Url) -> anyhow::Result<bool> {
    let pool = PgPoolOptions::new().max_connections(4).connect(db_url.as_str()).await?;
    MIGRATOR.run(&pool).await?;
    let started = Instant::now();
    // The ledger's activity is posted now; the snapshot is taken past the cooldown.
    let at = OffsetDateTime::now_utc() + time::Duration::days(8);
    let version = seed(&pool, at).await?;
    println!(
        "seeded {REFERRALS} referrals of one referrer ({BACKGROUND_REFERRALS} of {BACKGROUND_REFERRERS} others around it) and {POSTINGS} receipt-batch postings in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (recomputed, _) = bonuses::recompute(&pool, CHAIN_ID, PLATFORM, REFERRER, at).await?;
    println!(
        "bonuses awarded by recompute: {} in {:.1} s",
        recomputed.awarded,
        started.elapsed().as_secs_f64()
    );

    let mut conn = pool.acquire().await?;
    let snapshot = bonuses::snapshot(&mut conn, REFERRER, at).await?;
    check(&snapshot, version, recomputed.awarded)?;
    let held = snapshot.bonuses.iter().filter(|b| b.state == BonusState::Held).count();
    println!(
        "snapshot: {} referrals: {} qualified, {} pending, {} disqualified; {} bonuses ({held} held)",
        snapshot.referrals,
        snapshot.qualified,
        snapshot.pending,
        snapshot.disqualified,
        snapshot.bonuses.len()
    );
    for reason in &snapshot.by_reason {
        let status = match reason.status {
            Status::Qualified => "qualified",
            Status::Pending => "pending",
            Status::Disqualified => "disqualified",
        };
        println!(
            "  {:<24} {:>5} ({status})",
            format!("{:?}", reason.reason),
            reason.count
        );
    }

    let mut p50s = Vec::with_capacity(ROUNDS);
    let mut p99s = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        for _ in 0..WARMUP {
            bonuses::snapshot(&mut conn, REFERRER, at).await?;
        }
        let mut latencies = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let snapshot = bonuses::snapshot(&mut conn, REFERRER, at).await?;
            latencies.push(started.elapsed());
            check(&snapshot, version, recomputed.awarded)?;
        }
        latencies.sort();
        let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        println!(
            "  round {round}: p50 {:.2} ms, p99 {:.2} ms ({SAMPLES} snapshots)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        p50s.push(p50);
        p99s.push(p99);
    }
    p50s.sort();
    p99s.sort();
    let (p50, p99) = (p50s[ROUNDS / 2], p99s[ROUNDS / 2]);
    let met = p99 < TARGET_P99;
    println!(
        "referral snapshot of {REFERRALS} referrals, in process: p50 {:.2} ms, p99 {:.2} ms (medians of {ROUNDS} rounds; target p99 < {} ms) {}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        TARGET_P99.as_millis(),
        if met { "ok" } else { "MISSED" }
    );
    drop(conn);
    pool.close().await;
    Ok(met)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::with_database(DATABASE, |url| async move { run(&url).await }).await
}
