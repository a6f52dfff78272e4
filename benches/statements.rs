//! Earnings statements at scale, in process against a real Postgres (issue: with 1,000,000
//! payees and a year of daily buckets, a monthly statement in under 50 ms):
//!
//! - the buckets hold 1,000,000 payees with earnings on one day each, and 40 busy hosters
//!   with two nodes each earning in every quarter hour of the last year (2.8 million rows:
//!   denser than daily buckets), with the UTC days and months the roller keeps beside them;
//! - a statement is `statements::read::payee_statement` as `GET /v1/statements/me` runs it:
//!   the lines and balances, the open holds, the chain's marks, in one repeatable-read
//!   transaction; the month is one of the last twelve (closed), the zone one of UTC,
//!   Europe/Berlin, America/New_York and Asia/Kolkata (a half-hour offset);
//! - each busy payee's months are read twice: the first read freezes the statement (an
//!   insert), the second serves the frozen bytes; then as many quiet payees' statements.
//!   p50 and p99 of each.
//!
//! ```text
//! cargo bench --bench statements
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_statements`. Exits non-zero when a
//! p99 misses its target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
#![allow(clippy::print_stdout)]

mod support;

use std::time::{Duration, Instant};

use adescrow::platform::db::MIGRATOR;
use adescrow::statements::StatementPeriod;
use adescrow::statements::read::payee_statement;
use alloy::primitives::Address;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use support::percentile;

const DATABASE: &str = "adescrow_bench_statements";
const PAYEES: i64 = 1_000_000;
const BUSY: i64 = 40;
const REQUESTS: usize = 480;
const TARGET_P99: Duration = Duration::from_millis(50);
const TOKEN: Address = Address::repeat_byte(0x70);
const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];
const CHAIN_ID: u64 = 31337;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(support::with_database(DATABASE, |url| async move {
        let pool = PgPoolOptions::new().max_connections(4).connect(url.as_str()).await?;
        MIGRATOR.run(&pool).await?;
        let started = Instant::now();
        seed(&pool).await?;
        println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

        let now = jiff::Timestamp::now();
        let this_month = now.to_zoned(jiff::tz::TimeZone::UTC).date().first_of_month();
        let mut rng = StdRng::seed_from_u64(19);
        let requests: Vec<(Address, StatementPeriod)> = (0..REQUESTS)
            .map(|_| {
                let months_back = rng.random_range(1..=11);
                let date = this_month.checked_sub(jiff::Span::new().months(months_back)).unwrap();
                let zone = ZONES[rng.random_range(0..ZONES.len())];
                let period = StatementPeriod::parse(Some("month"), Some(&date.to_string()), Some(zone), now).unwrap();
                (payee(rng.random_range(1..=BUSY)), period)
            })
            .collect();
        let mut met = true;
        for pass in ["busy payee, first read (freezes)", "busy payee, frozen"] {
            let mut samples = Vec::with_capacity(REQUESTS);
            for (payee, period) in &requests {
                let started = Instant::now();
                let statement = payee_statement(&pool, CHAIN_ID, *payee, period).await?;
                samples.push(started.elapsed());
                assert!(statement.statement.hash.is_some(), "a past month is closed");
                assert_eq!(
                    statement.statement.body.tokens[0].lines.len(),
                    2,
                    "two nodes' ad revenue"
                );
            }
            met &= report(pass, &mut samples);
        }
        let mut samples = Vec::with_capacity(REQUESTS);
        for (_, period) in &requests {
            let started = Instant::now();
            payee_statement(&pool, CHAIN_ID, payee(rng.random_range(BUSY + 1..=PAYEES)), period).await?;
            samples.push(started.elapsed());
        }
        met &= report("quiet payee", &mut samples);
        Ok(met)
    }))
}

fn report(what: &str, samples: &mut [Duration]) -> bool {
    samples.sort();
    let p99 = percentile(samples, 0.99);
    println!(
        "  monthly statement, {what}: p50 {:?}, p99 {p99:?} (target {TARGET_P99:?}), {} requests",
        percentile(samples, 0.5),
        samples.len()
    );
    p99 <= TARGET_P99
}

/// Payee `n` (1-based) as the seed writes it: its number as the address's last bytes.
fn payee(n: i64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    Address::from(bytes)
}

/// A year of quarter hours, days and months as the roller writes them, and the roller's
/// progress: everything rolled, sealed ten minutes ago.
async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    // Busy hosters: two nodes each, every quarter hour of the last year.
    sqlx::query(
        "INSERT INTO statement_buckets (payee, bucket, token, line, node, amount)
         SELECT decode(lpad(to_hex(p), 40, '0'), 'hex'), b, $1, 'ad_revenue', n, 1000 + p
         FROM generate_series(1, $2::bigint) p,
              generate_series(date_trunc('hour', now()) - interval '365 days', now(), interval '15 minutes') b,
              (VALUES ('00000000-0000-0000-0000-00000000000a'::uuid), ('00000000-0000-0000-0000-00000000000b'::uuid)) v(n)",
    )
    .bind(TOKEN.as_slice())
    .bind(BUSY)
    .execute(pool)
    .await?;
    // Everyone else: one day's earnings somewhere in the year.
    sqlx::query(
        "INSERT INTO statement_buckets (payee, bucket, token, line, node, amount)
         SELECT decode(lpad(to_hex(p), 40, '0'), 'hex'),
                date_trunc('day', now()) - (hashint8(p) % 365 + 365) % 365 * interval '1 day', $1,
                'witness_fees', '00000000-0000-0000-0000-00000000000c', 500
         FROM generate_series($2::bigint + 1, $3::bigint) p",
    )
    .bind(TOKEN.as_slice())
    .bind(BUSY)
    .bind(PAYEES)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO statement_days (payee, day, token, line, node, amount)
         SELECT payee, (bucket AT TIME ZONE 'UTC')::date, token, line, node, sum(amount)
         FROM statement_buckets GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO statement_months (payee, month, token, amount)
         SELECT payee, date_trunc('month', bucket AT TIME ZONE 'UTC')::date, token, sum(amount)
         FROM statement_buckets GROUP BY 1, 2, 3",
    )
    .execute(pool)
    .await?;
    sqlx::query("UPDATE statement_progress SET sealed_before = now() - interval '10 minutes'")
        .execute(pool)
        .await?;
    sqlx::query("ANALYZE statement_buckets").execute(pool).await?;
    sqlx::query("ANALYZE statement_days").execute(pool).await?;
    sqlx::query("ANALYZE statement_months").execute(pool).await?;
    Ok(())
}
