//! The ad server's two figures, against a real Postgres, with 1,000 running campaigns and
//! 10,000 ads (mixed time zones, dayparts, targeting, priorities and prices):
//!
//! - **Decision latency in process**: `AdServer::decide` for random viewers, regions and
//!   communities on the sidebar placement (up to three ads, tickets signed); p50 and p99.
//! - **Decisions per second over HTTP**: the real router served on loopback by axum, driven
//!   by reqwest clients in the same process (`CONCURRENCY` requests in flight, keep-alive
//!   connections), each request a `POST /v1/decisions` with a node session token.
//!
//! ```text
//! cargo bench --bench decisions
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_decisions`. Prints one line per
//! figure with its target, and exits non-zero when a figure misses it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]
// A bench binary reports on stdout.
#![allow(clippy::print_stdout)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adescrow::accounts::node_session::session_message;
use adescrow::adserver::serving::Context;
use adescrow::http::{AppState, app};
use adescrow::platform::db::MIGRATOR;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, ensure};
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use support::{CHAIN_ID, percentile};
use uuid::Uuid;

const DATABASE: &str = "adescrow_bench_decisions";
const IN_PROCESS_DECISIONS: usize = 200_000;
const HTTP_DURATION: Duration = Duration::from_secs(10);
const CONCURRENCY: usize = 64;
const VIEWERS: u32 = 1_000_000;

const TARGET_P99: Duration = Duration::from_millis(2);
const TARGET_PER_SEC: f64 = 10_000.0;

/// 1,000 campaigns over 50 brands in four zones; a fifth have a night daypart, a third
/// target a region, a quarter two communities, a seventh members only; ten ads each.
const SEED: &str = r#"
INSERT INTO users (id, address) VALUES ('00000000-0000-0000-0000-000000000001', '\x1111111111111111111111111111111111111111');
INSERT INTO user_roles (user_id, role) VALUES ('00000000-0000-0000-0000-000000000001', 'advertiser');
INSERT INTO brands (id, owner_id, name, daily_budget, monthly_budget, time_zone)
SELECT md5('brand' || b)::uuid, '00000000-0000-0000-0000-000000000001', 'Brand ' || b, 1e30, 1e30,
       (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'])[1 + b % 4]
FROM generate_series(0, 49) b;
INSERT INTO campaigns (id, brand_id, name, token, chain_campaign_id, starts_at, ends_at, daypart_start_hour,
                       daypart_end_hour, target_regions, target_communities, target_user_types, priority, status)
SELECT md5('campaign' || c)::uuid, md5('brand' || (c % 50))::uuid, 'Campaign ' || c,
       '\x7070707070707070707070707070707070707070', sha256(('campaign' || c)::bytea),
       now() - interval '1 day', now() + interval '30 days',
       CASE WHEN c % 5 = 0 THEN 22 END, CASE WHEN c % 5 = 0 THEN 6 END,
       CASE WHEN c % 3 = 0 THEN ARRAY['region-' || (c % 10)] ELSE '{}' END,
       CASE WHEN c % 4 = 0 THEN ARRAY['community-' || (c % 20), 'community-' || ((c + 7) % 20)] ELSE '{}' END,
       CASE WHEN c % 7 = 0 THEN ARRAY['member'] ELSE '{}' END,
       c % 3, 'running'
FROM generate_series(0, 999) c;
INSERT INTO ad_sets (id, campaign_id, name)
SELECT md5('set' || c)::uuid, md5('campaign' || c)::uuid, 'Set' FROM generate_series(0, 999) c;
INSERT INTO ads (ad_set_id, name, kind, title, click_url, price_impression, price_click)
SELECT md5('set' || c)::uuid, 'Ad ' || a, 'text', 'Title ' || a, 'https://example.com/' || c || '/' || a,
       1000 + (c * 10 + a) % 5000, CASE WHEN a % 2 = 0 THEN 50000 END
FROM generate_series(0, 999) c, generate_series(0, 9) a;
"#;

/// A random request: a viewer out of a million, often a region, sometimes communities.
fn random_request(rng: &mut impl Rng) -> (String, Option<String>, Vec<String>, Option<&'static str>) {
    let viewer = format!("viewer-{}", rng.random_range(0..VIEWERS));
    let region = rng
        .random_bool(0.8)
        .then(|| format!("region-{}", rng.random_range(0..10)));
    let communities = (0..rng.random_range(0..3))
        .map(|_| format!("community-{}", rng.random_range(0..20)))
        .collect();
    let user_type = rng.random_bool(0.3).then_some("member");
    (viewer, region, communities, user_type)
}

async fn seed(pool: &PgPool, node_key: &PrivateKeySigner) -> anyhow::Result<()> {
    let seed = format!("{SEED}{}", support::escrows_sql(1_000));
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed))
        .execute(pool)
        .await
        .context("seeding campaigns")?;
    sqlx::query(
        "INSERT INTO users (id, address) VALUES ('00000000-0000-0000-0000-000000000002', '\\x2222222222222222222222222222222222222222');
         ",
    )
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ('00000000-0000-0000-0000-000000000002', 'hoster')")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO nodes (owner_id, address, name) VALUES ('00000000-0000-0000-0000-000000000002', $1, 'bench')",
    )
    .bind(node_key.address().as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// p99 of `decide` over random requests; prints the figure and returns whether it is met.
fn in_process(state: &AppState, node: Uuid) -> bool {
    let mut rng = rand::rng();
    let mut latencies = Vec::with_capacity(IN_PROCESS_DECISIONS);
    let mut filled = 0usize;
    for _ in 0..IN_PROCESS_DECISIONS {
        let (viewer, region, communities, user_type) = random_request(&mut rng);
        let context = Context {
            viewer: Some(&viewer),
            region: region.as_deref(),
            communities: &communities,
            user_type,
        };
        let started = Instant::now();
        let decision = state
            .ad_server
            .decide(node, "sidebar", &context, OffsetDateTime::now_utc())
            .expect("sidebar exists");
        latencies.push(started.elapsed());
        filled += usize::from(decision.is_ok_and(|ads| !ads.is_empty()));
    }
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    println!(
        "decision in process: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {IN_PROCESS_DECISIONS} decisions ({:.1}% filled) (target p99 <= {} ms)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        latencies.last().unwrap().as_secs_f64() * 1e6,
        filled as f64 * 100.0 / IN_PROCESS_DECISIONS as f64,
        TARGET_P99.as_millis()
    );
    p99 <= TARGET_P99
}

/// Decisions per second through the HTTP stack; prints the figure and returns whether it is met.
async fn over_http(state: AppState, node_key: &PrivateKeySigner) -> anyhow::Result<bool> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>()).await
    });
    let base = format!("http://{address}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;

    let issued_at = OffsetDateTime::now_utc().format(&Rfc3339)?;
    let message = session_message(node_key.address(), CHAIN_ID, &issued_at);
    let signature = format!(
        "0x{}",
        hex::encode(node_key.sign_message_sync(message.as_bytes())?.as_bytes())
    );
    let session: serde_json::Value = client
        .post(format!("{base}/v1/nodes/sessions"))
        .json(&json!({ "address": node_key.address(), "issuedAt": issued_at, "signature": signature }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = Arc::new(session["token"].as_str().context("node token")?.to_owned());

    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + HTTP_DURATION;
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, token, completed, url) = (
            client.clone(),
            token.clone(),
            completed.clone(),
            format!("{base}/v1/decisions"),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let (viewer, region, communities, user_type) = random_request(&mut rand::rng());
                let body = json!({ "placement": "sidebar", "viewer": viewer, "region": region, "communities": communities, "userType": user_type });
                let sent = Instant::now();
                let response = client.post(&url).bearer_auth(token.as_str()).json(&body).send().await?;
                anyhow::ensure!(response.status().is_success(), "decision failed: {}", response.status());
                response.bytes().await?;
                latencies.push(sent.elapsed());
                completed.fetch_add(1, Ordering::Relaxed);
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
    latencies.sort();
    let per_sec = completed.load(Ordering::Relaxed) as f64 / elapsed;
    println!(
        "decisions over HTTP: {per_sec:.0}/s with {CONCURRENCY} in flight for {:.0} s (p50 {:.2} ms, p99 {:.2} ms) (target >= {TARGET_PER_SEC:.0}/s)",
        elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(per_sec >= TARGET_PER_SEC)
}

async fn run(db_url: &Url) -> anyhow::Result<bool> {
    let pool = PgPoolOptions::new().max_connections(8).connect(db_url.as_str()).await?;
    MIGRATOR.run(&pool).await?;
    let node_key = PrivateKeySigner::random();
    seed(&pool, &node_key).await?;
    let state = AppState::new(
        support::config(alloy::primitives::Address::repeat_byte(0xe5), 1000),
        pool.clone(),
    )?;
    let started = Instant::now();
    state.ad_server.refresh().await?;
    println!("serving index built in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let node: Uuid = sqlx::query_scalar("SELECT id FROM nodes").fetch_one(&pool).await?;
    ensure!(state.ad_server.is_active_node(node), "bench node is active");

    let in_process_met = in_process(&state, node);
    let http_met = over_http(state, &node_key).await?;
    pool.close().await;
    Ok(in_process_met && http_met)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    support::with_database(DATABASE, |url| async move { run(&url).await }).await
}
