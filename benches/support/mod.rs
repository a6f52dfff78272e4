//! What the bench binaries share: an API configuration for in-process servers, a throwaway
//! database, percentiles, and where the native anvil is (the tests' `foundry` module).

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use adescrow::platform::config::ApiArgs;
use alloy::primitives::Address;
use anyhow::Context as _;
use sqlx::{Connection, PgConnection};
use url::Url;

#[path = "../../tests/it/support/foundry.rs"]
pub mod foundry;

pub const CHAIN_ID: u64 = 31337;

/// API settings for a bench: limits out of the way, an RPC nobody answers.
pub fn config(escrow: Address, max_batch_receipts: usize) -> ApiArgs {
    ApiArgs {
        public_url: "http://127.0.0.1:8080".parse().unwrap(),
        rpc_url: "http://127.0.0.1:9".parse().unwrap(),
        chain_id: CHAIN_ID,
        jwt_secret: "bench-secret-bench-secret-bench-secret".into(),
        session_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        nonce_ttl: Duration::from_secs(600),
        nonces_per_client: std::num::NonZeroU32::new(32).unwrap(),
        admin_addresses: Vec::new(),
        body_limit: 4 * 1024 * 1024,
        request_timeout: Duration::from_secs(30),
        idempotency_key_lifetime: Duration::from_secs(86_400),
        cors_origins: Vec::new(),
        rate_limit_per_second: 1_000_000,
        rate_limit_burst: 1_000_000,
        indexer_max_lag: 64,
        ticket_secret: "bench-ticket-secret-bench-ticket-secret".into(),
        ticket_ttl: Duration::from_secs(3600),
        node_session_ttl: Duration::from_secs(3600),
        serving_refresh: Duration::from_secs(5),
        escrow_address: Some(escrow),
        consent_address: None,
        treasury_address: None,
        grace_period: None,
        web_dir: "web/app/dist".into(),
        explorer_tx_url: None,
        platform_address: Address::repeat_byte(0xfa),
        split_witnessed: vec![9000, 900, 100],
        split_unwitnessed: vec![5000, 5000],
        viewer_reward_bps: vec![0, 500, 0, 500],
        max_batch_receipts,
        leaderboard_zones: Vec::new(),
        leaderboard_refresh: Duration::from_secs(10),
        metrics_addr: None,
        market: adescrow::platform::config::MarketArgs {
            secret: "market-secret-market-secret-market-secret".into(),
            store: std::env::temp_dir().join("adescrow-test-market").display().to_string(),
            fee_bps: 1500,
            refund_window: Duration::from_secs(14 * 86_400),
            pay_within: Duration::from_secs(3600),
            download_entitlement: Duration::from_secs(30 * 86_400),
            link_ttl: Duration::from_secs(600),
            max_file_size: 1024 * 1024,
        },
        growth: adescrow::platform::config::GrowthArgs {
            referral_link_ttl: Duration::from_secs(30 * 86_400),
            affiliate_rate_bps: 2000,
            affiliate_max_rate_bps: 5000,
            affiliate_months: 3,
            affiliate_hold: Duration::from_secs(30 * 86_400),
            affiliate_min_payout: Vec::new(),
        },
    }
}

/// One advertiser (`\x1111...`), one brand without budget limits, and `count` running
/// campaigns (`md5('campaign' || c)`, escrow id `sha256('campaign' || c)`) in the token
/// `\x7070...`.
pub fn campaigns_sql(count: usize) -> String {
    format!(
        r#"
INSERT INTO users (id, address) VALUES ('00000000-0000-0000-0000-000000000001', '\x1111111111111111111111111111111111111111');
INSERT INTO brands (id, owner_id, name, daily_budget, monthly_budget, time_zone)
VALUES ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', 'Brand', 1e30, 1e30, 'UTC');
INSERT INTO campaigns (id, brand_id, name, token, chain_campaign_id, starts_at, ends_at, status)
SELECT md5('campaign' || c)::uuid, '00000000-0000-0000-0000-0000000000b1', 'Campaign ' || c,
       '\x7070707070707070707070707070707070707070', sha256(('campaign' || c)::bytea),
       now() - interval '1 day', now() + interval '30 days', 'running'
FROM generate_series(0, {last}) c;
"#,
        last = count - 1
    )
}

/// The chain mirror's view of `count` such campaigns' escrows: opened by the advertiser in
/// the token, funded with 10^24 base units, ending far in the future.
pub fn escrows_sql(count: usize) -> String {
    format!(
        r#"
INSERT INTO mirror_campaign_events (chain_id, block_number, log_index, tx_hash, kind, campaign_id, account, token, amount, remaining, end_time)
SELECT {CHAIN_ID}, c + 1, k, '\x01', kind::campaign_event_kind, sha256(('campaign' || c)::bytea),
       '\x1111111111111111111111111111111111111111',
       CASE WHEN kind = 'opened' THEN '\x7070707070707070707070707070707070707070'::bytea END,
       CASE WHEN kind = 'funded' THEN 1e24 END, CASE WHEN kind = 'funded' THEN 1e24 END,
       CASE WHEN kind = 'opened' THEN 4000000000 END
FROM generate_series(0, {last}) c, (VALUES (0, 'opened'), (1, 'funded')) AS e(k, kind);
"#,
        last = count - 1
    )
}

/// The value at quantile `p` of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `bench` against a fresh database `name` (created through `DATABASE_URL`, default
/// `postgres://postgres@127.0.0.1:5432/postgres`), drops it afterwards, and exits non-zero
/// when `bench` reports a missed target.
pub async fn with_database<F, Fut>(name: &str, bench: F) -> anyhow::Result<()>
where
    F: FnOnce(Url) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let admin_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .context("cannot connect to Postgres (is it running, and is DATABASE_URL right?)")?;
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop.clone()))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let mut db_url = Url::parse(&admin_url)?;
    db_url.set_path(name);
    // A bench measures the service beside Postgres on this host. Over loopback, TLS protects
    // nothing and costs both ends CPU (a service on the database's host would connect without
    // it too); a URL that names its own sslmode keeps it.
    let loopback = matches!(db_url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if loopback && !db_url.query_pairs().any(|(key, _)| key == "sslmode") {
        db_url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    let result = bench(db_url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await?;
    if !result? {
        std::process::exit(1);
    }
    Ok(())
}
