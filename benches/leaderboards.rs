//! Leaderboards at scale, in process against a real Postgres (issue: with 1,000,000 payees
//! and a year of daily buckets, a leaderboard page and a user's rank in under 10 ms at p99):
//!
//! - the database holds hoster-earnings boards for 1,000,000 payees: all time, the current
//!   month, and 365 daily buckets of 20,000 payees each (7.3 million rows), with many
//!   tied scores;
//! - the API's in-memory ranking loads the all-time and the month board once (the load
//!   time is printed), then serves random pages (50 entries) and random payees' ranks with
//!   two neighbours each side, as `GET /v1/leaderboards/...` does through
//!   `Rankings::get`; p50 and p99 of each.
//!
//! ```text
//! cargo bench --bench leaderboards
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_leaderboards`. Exits non-zero when
//! a p99 misses its target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
#![allow(clippy::print_stdout)]

mod support;

use std::time::{Duration, Instant};

use adescrow::leaderboards::ranking::Rankings;
use adescrow::leaderboards::{Board, Category, Period, PeriodKind};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::Address;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use support::percentile;

const DATABASE: &str = "adescrow_bench_leaderboards";
const PAYEES: i64 = 1_000_000;
const DAILY_PAYEES: i64 = 20_000;
const DAYS: i64 = 365;
const REQUESTS: usize = 20_000;
const PER_PAGE: usize = 50;
const TARGET_P99: Duration = Duration::from_millis(10);
const TOKEN: Address = Address::repeat_byte(0x70);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(support::with_database(DATABASE, |url| async move {
        let pool = PgPoolOptions::new().max_connections(4).connect(url.as_str()).await?;
        MIGRATOR.run(&pool).await?;
        let started = Instant::now();
        seed(&pool).await?;
        println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
        let rankings = Rankings::new(pool.clone(), Duration::from_secs(3600));
        let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut met = true;
        for kind in [PeriodKind::All, PeriodKind::Month] {
            let board = Board {
                category: Category::HosterEarnings,
                zone: "UTC".into(),
                token: TOKEN,
                period: Period::containing(kind, today),
            };
            let loading = Instant::now();
            let ranked = rankings.get(&board).await?;
            println!(
                "{kind:?} board: {} payees loaded and ranked in {:.2} s",
                ranked.len(),
                loading.elapsed().as_secs_f64()
            );
            met &= measure(&rankings, &board, ranked.len()).await?;
        }
        Ok(met)
    }))
}

async fn measure(rankings: &Rankings, board: &Board, len: usize) -> anyhow::Result<bool> {
    let mut rng = StdRng::seed_from_u64(11);
    let (mut pages, mut ranks) = (Vec::with_capacity(REQUESTS), Vec::with_capacity(REQUESTS));
    for _ in 0..REQUESTS {
        let page = rng.random_range(0..len / PER_PAGE);
        let started = Instant::now();
        let entries = rankings.get(board).await?.page(page * PER_PAGE, PER_PAGE);
        pages.push(started.elapsed());
        assert_eq!(entries.len(), PER_PAGE);

        let payee = payee(rng.random_range(1..=PAYEES));
        let started = Instant::now();
        let mine = rankings.get(board).await?.around(payee, 2);
        ranks.push(started.elapsed());
        assert!(mine.is_some(), "every payee is on the board");
    }
    let mut met = true;
    for (what, samples) in [("page of 50", &mut pages), ("payee's rank and neighbours", &mut ranks)] {
        samples.sort();
        let p99 = percentile(samples, 0.99);
        println!(
            "  {what}: p50 {:?}, p99 {p99:?} (target {TARGET_P99:?}), {REQUESTS} requests",
            percentile(samples, 0.5)
        );
        met &= p99 <= TARGET_P99;
    }
    Ok(met)
}

/// Payee `n` (1-based) as the seed writes it: its number as the address's last bytes.
fn payee(n: i64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    Address::from(bytes)
}

/// A million payees on the all-time and month boards and a year of daily buckets. Scores
/// are drawn from a small range so that many tie.
async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let month = Period::containing(PeriodKind::Month, today).starts_on.to_string();
    sqlx::query(
        "INSERT INTO leaderboard_boards (category, zone, token, period, starts_on, ends_at)
         SELECT 'hoster_earnings'::leaderboard_category, 'UTC', $1::bytea, 'all'::leaderboard_period, date '1970-01-01',
                NULL::timestamptz
         UNION ALL SELECT 'hoster_earnings', 'UTC', $1, 'month', $2::date, ($2::date + interval '1 month')::timestamptz
         UNION ALL SELECT 'hoster_earnings', 'UTC', $1, 'day', d::date, (d + interval '1 day')::timestamptz
           FROM generate_series($3::date - ($4::int - 1), $3::date, interval '1 day') d",
    )
    .bind(TOKEN.as_slice())
    .bind(&month)
    .bind(today.to_string())
    .bind(DAYS as i32)
    .execute(pool)
    .await?;
    for (period, starts_on) in [("all", "1970-01-01".to_owned()), ("month", month)] {
        sqlx::query(
            "INSERT INTO leaderboard_scores (category, zone, token, period, starts_on, subject, score)
             SELECT 'hoster_earnings', 'UTC', $1, $2::leaderboard_period, $3::date,
                    decode(lpad(to_hex(n), 40, '0'), 'hex'), (hashint8(n) % 100000 + 100000)::numeric
             FROM generate_series(1, $4::bigint) n",
        )
        .bind(TOKEN.as_slice())
        .bind(period)
        .bind(&starts_on)
        .bind(PAYEES)
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO leaderboard_scores (category, zone, token, period, starts_on, subject, score)
         SELECT 'hoster_earnings', 'UTC', $1, 'day', $2::date - d,
                decode(lpad(to_hex((d * 7919 + n) % $5 + 1), 40, '0'), 'hex'), (hashint8(n + d) % 5000 + 5000)::numeric
         FROM generate_series(0, $3::int - 1) d, generate_series(1, $4::bigint) n",
    )
    .bind(TOKEN.as_slice())
    .bind(today.to_string())
    .bind(DAYS as i32)
    .bind(DAILY_PAYEES)
    .bind(PAYEES)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE leaderboard_scores").execute(pool).await?;
    Ok(())
}
