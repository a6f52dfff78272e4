//! Settlement's figures against a real Postgres:
//!
//! - **Closing an epoch** with 100,000 payees and 1,000 campaigns: freezing the ledger,
//!   summing cumulative earnings and debits, building the payout tree and storing every
//!   leaf with its proof. Measured twice: the first epoch (every payee new) and the next
//!   (the previous tree's 100,000 leaves carried forward plus another 100,000 entries).
//! - **Serving a proof**: `GET /v1/payouts/{account}` through the router in process, for
//!   random payees of the settled epoch (leaf, proof, calldata, claims and pending).
//!
//! ```text
//! cargo bench --bench settlement
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_settlement`. Exits non-zero when a
//! figure misses its target.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
// A bench binary reports on stdout.
#![allow(clippy::print_stdout)]

mod support;

use std::time::{Duration, Instant};

use adescrow::http::{AppState, app};
use adescrow::platform::db::MIGRATOR;
use adescrow::settlement::relayer::epoch;
use alloy::primitives::{Address, B256};
use anyhow::{Context as _, ensure};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rand::seq::IndexedRandom;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;
use url::Url;

use support::{CHAIN_ID, percentile};

const PAYEES: usize = 100_000;
const CAMPAIGNS: usize = 1_000;
const PROOF_REQUESTS: usize = 5_000;
const TARGET_CLOSE: Duration = Duration::from_secs(5);
const TARGET_PROOF_P99: Duration = Duration::from_millis(1);

/// Spend of every campaign, earned by 100 payees each: 100,000 payees in all. `round`
/// makes each call's postings distinct.
fn ledger_sql(round: u32) -> String {
    format!(
        r#"
BEGIN;
INSERT INTO ledger_postings (token, source, source_id)
SELECT '\x7070707070707070707070707070707070707070', 'adjustment', 'bench-{round}-' || c FROM generate_series(0, 999) c;
CREATE TEMP TABLE round_postings AS
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS c FROM ledger_postings WHERE source_id LIKE 'bench-{round}-%';
-- One statement: every statement's entries must balance per posting.
INSERT INTO ledger_entries (posting_id, role, escrow_id, payee, amount)
SELECT p.id, 'hoster'::ledger_role, NULL::uuid, substring(sha256(('payee' || i)::bytea) FROM 1 FOR 20), 1000 + i % 7 + {round}
FROM generate_series(0, 99999) i JOIN round_postings p ON p.c = i / 100
UNION ALL
SELECT p.id, 'escrow', md5('campaign' || p.c)::uuid, NULL, -sum(1000 + i % 7 + {round})
FROM generate_series(0, 99999) i JOIN round_postings p ON p.c = i / 100
GROUP BY p.id, p.c;
DROP TABLE round_postings;
COMMIT;
"#
    )
}

/// Closes, builds and confirms one epoch; returns how long closing and building took.
async fn settle_epoch(pool: &PgPool) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let epoch = epoch::close(pool, CHAIN_ID).await?;
    epoch::build(pool, CHAIN_ID, epoch).await?;
    let elapsed = started.elapsed();
    let mut conn = pool.acquire().await?;
    epoch::confirm(&mut conn, CHAIN_ID, epoch, B256::repeat_byte(epoch as u8)).await?;
    Ok((epoch, elapsed))
}

async fn run(db_url: Url) -> anyhow::Result<bool> {
    let pool = PgPoolOptions::new().max_connections(8).connect(db_url.as_str()).await?;
    MIGRATOR.run(&pool).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(support::campaigns_sql(CAMPAIGNS)))
        .execute(&pool)
        .await
        .context("seeding campaigns")?;

    let mut close_times = Vec::new();
    for round in 0..2 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ledger_sql(round)))
            .execute(&pool)
            .await
            .context("seeding the ledger")?;
        let (epoch, elapsed) = settle_epoch(&pool).await?;
        let (payees, debits): (i32, i64) = sqlx::query_as(
            "SELECT payees, (SELECT count(*) FROM settlement_debits d WHERE d.epoch = e.epoch)
             FROM settlement_epochs e WHERE epoch = $1",
        )
        .bind(epoch as i64)
        .fetch_one(&pool)
        .await?;
        ensure!(
            payees as usize == PAYEES && debits as usize == CAMPAIGNS,
            "epoch {epoch}: {payees} payees, {debits} debits"
        );
        println!(
            "epoch {epoch} closed: {:.2} s for {payees} payees and {debits} campaigns (tree built, proofs stored) (target <= {} s)",
            elapsed.as_secs_f64(),
            TARGET_CLOSE.as_secs()
        );
        close_times.push(elapsed);
    }

    // Serving is measured in the steady state: autovacuum would have vacuumed and analyzed
    // tables this size by now, and the bulk writes above are flushed before the clock starts.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&pool).await?;
    sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    let accounts: Vec<Vec<u8>> = sqlx::query_scalar("SELECT account FROM payout_leaves WHERE epoch = 2")
        .fetch_all(&pool)
        .await?;
    let router = app(AppState::new(
        support::config(Address::repeat_byte(0xe5), 1000),
        pool.clone(),
    )?);
    let mut rng = rand::rng();
    let mut latencies = Vec::with_capacity(PROOF_REQUESTS);
    for i in 0..PROOF_REQUESTS + 500 {
        let account = Address::from_slice(accounts.choose(&mut rng).expect("leaves"));
        let request = Request::get(format!("/v1/payouts/{account}")).body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        ensure!(response.status().is_success(), "payouts answered {}", response.status());
        let body = response.into_body().collect().await?.to_bytes();
        // The first 500 warm the pool and caches.
        if i >= 500 {
            latencies.push(started.elapsed());
        }
        std::hint::black_box(body);
    }
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    println!(
        "proof served: p50 {:.0} µs, p99 {:.0} µs over {PROOF_REQUESTS} requests in process (target p99 <= {} µs)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        TARGET_PROOF_P99.as_micros()
    );
    pool.close().await;
    Ok(close_times.iter().all(|t| *t <= TARGET_CLOSE) && p99 <= TARGET_PROOF_P99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("error").init();
    support::with_database("adescrow_bench_settlement", run).await
}
