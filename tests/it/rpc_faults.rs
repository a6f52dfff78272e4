//! The indexer under RPC faults, injected by a JSON-RPC proxy in front of anvil: refused log
//! ranges shrink, a dead endpoint fails over, and an outage is waited out with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use adescrow_chain::rpc::ChainRpc;
use adescrow_indexer::events::Contracts;
use adescrow_indexer::follower::{Follower, FollowerConfig, Step};
use alloy::transports::http::reqwest;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use url::Url;

use crate::indexer::Chain;

pub const PASS: u8 = 0;
/// Refuse `eth_getLogs` over more than 20 blocks, as hosted providers do.
const LIMIT_RANGES: u8 = 1;
/// Answer everything with 503.
pub const DOWN: u8 = 2;

#[derive(Clone)]
struct Proxy {
    upstream: Url,
    client: reqwest::Client,
    mode: Arc<AtomicU8>,
}

async fn forward(State(proxy): State<Proxy>, body: String) -> Response {
    let mode = proxy.mode.load(Ordering::SeqCst);
    if mode == DOWN {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if mode == LIMIT_RANGES && request["method"] == "eth_getLogs" {
        let filter = &request["params"][0];
        let block = |key: &str| {
            filter[key]
                .as_str()
                .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        };
        if let (Some(from), Some(to)) = (block("fromBlock"), block("toBlock"))
            && to - from + 1 > 20
        {
            let error = json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32005, "message": "query returned more than 10000 results"}});
            return axum::Json(error).into_response();
        }
    }
    let upstream = proxy
        .client
        .post(proxy.upstream.clone())
        .header("content-type", "application/json")
        .body(body);
    match upstream.send().await {
        Ok(response) => {
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = response.text().await.unwrap_or_default();
            (status, [("content-type", "application/json")], text).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Starts a proxy to `upstream` on a free loopback port.
pub async fn start_proxy(upstream: Url, mode: u8) -> (Url, Arc<AtomicU8>) {
    let mode = Arc::new(AtomicU8::new(mode));
    let proxy = Proxy {
        upstream,
        client: reqwest::Client::new(),
        mode: mode.clone(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(forward))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, mode)
}

fn follower(chain: &Chain, pool: &PgPool, urls: Vec<Url>) -> Follower {
    let contracts = Contracts {
        escrow: chain.deployment.ad_escrow.address,
        consent: chain.deployment.consent_registry.address,
    };
    let mut config = FollowerConfig::new(contracts, chain.deployment.ad_escrow.block);
    config.finality_depth = 5;
    config.max_range = 200;
    config.poll_interval = Duration::from_millis(10);
    Follower::new(
        ChainRpc::with_failover(urls, chain.anvil.chain_id(), Duration::from_secs(2)).role("indexer"),
        pool.clone(),
        config,
    )
}

async fn consent_events(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn refused_log_ranges_shrink_until_accepted(pool: PgPool) {
    let chain = Chain::start().await;
    for _ in 0..5 {
        chain.grant_many(5, 4, 4_000_000_000).await;
        chain.mine(10).await;
    }
    let (proxy, _mode) = start_proxy(chain.anvil.endpoint_url(), LIMIT_RANGES).await;
    let mut follower = follower(&chain, &pool, vec![proxy]);
    let mut shrank = 0;
    for _ in 0..1_000 {
        match follower.step().await.unwrap() {
            Step::Idle => break,
            Step::ShrankRange { range } => {
                shrank += 1;
                assert!(range >= 1);
            }
            _ => {}
        }
    }
    assert!(shrank >= 3, "200 -> 100 -> 50 -> 25 -> 12: shrank {shrank} times");
    assert_eq!(consent_events(&pool).await, 20, "every event despite the refusals");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_dead_endpoint_fails_over_to_the_next(pool: PgPool) {
    let chain = Chain::start().await;
    chain.grant_many(5, 7, 4_000_000_000).await;
    let (dead, _mode) = start_proxy(chain.anvil.endpoint_url(), DOWN).await;
    let mut follower = follower(&chain, &pool, vec![dead, chain.anvil.endpoint_url()]);
    for _ in 0..1_000 {
        if follower.step().await.unwrap() == Step::Idle {
            break;
        }
    }
    assert_eq!(consent_events(&pool).await, 7);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_outage_is_waited_out_and_the_indexer_recovers(pool: PgPool) {
    adescrow::platform::telemetry::metrics_handle();
    let chain = Chain::start().await;
    chain.grant_many(5, 5, 4_000_000_000).await;
    let (proxy, mode) = start_proxy(chain.anvil.endpoint_url(), DOWN).await;
    let task = tokio::spawn(follower(&chain, &pool, vec![proxy]).run(std::future::pending()));

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!task.is_finished(), "a transient outage never stops the indexer");
    assert_eq!(consent_events(&pool).await, 0);

    mode.store(PASS, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while consent_events(&pool).await < 5 {
        assert!(tokio::time::Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let metrics = adescrow::platform::telemetry::metrics_handle().render();
    let transient_errors = metrics.lines().find(|line| {
        line.starts_with("chain_rpc_errors_total{")
            && line.contains(r#"role="indexer""#)
            && line.contains(r#"kind="transient""#)
    });
    let count: f64 = transient_errors
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(
        count >= 1.0,
        "the outage's failures are counted by role and kind: {transient_errors:?}"
    );
    assert!(metrics.contains("indexer_indexed_block"), "heights are exported");
}
