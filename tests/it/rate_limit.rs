//! Per-client rate limits: 429 with Retry-After once a client's burst is spent. Only a
//! verified caller (user or node) has a budget of its own; missing or made-up credentials
//! count against their network. Sign-in nonces, which anyone can make the API write, are
//! capped per network.

use std::net::SocketAddr;

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

use crate::fixtures::*;
use crate::support::*;

/// A request as the server sees it from the peer `from` (an `ip:port`).
async fn call_from(app: &TestApp, from: &str, method: Method, path: &str, authorization: Option<&str>) -> Reply {
    let peer: SocketAddr = from.parse().unwrap();
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .extension(ConnectInfo(peer));
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let request = if method == Method::POST {
        request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({}).to_string()))
    } else {
        request.body(Body::empty())
    };
    app.send(request.unwrap()).await
}

async fn get_from(app: &TestApp, from: &str, path: &str, authorization: Option<&str>) -> Reply {
    call_from(app, from, Method::GET, path, authorization).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn tight(app_pool: PgPool, burst: u32) -> TestApp {
    TestApp::with(app_pool, |c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = burst;
    })
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn over_budget_clients_get_429_with_retry_after(pool: PgPool) {
    let app = tight(pool, 2);
    for _ in 0..2 {
        get_from(&app, "192.0.2.1:1000", "/v1/auth/nonce", None).await.ok();
    }
    let limited = get_from(&app, "192.0.2.1:1001", "/v1/auth/nonce", None).await;
    limited.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    assert!(
        (1..=2).contains(&retry_after(&limited)),
        "retry-after {}",
        retry_after(&limited)
    );

    // Another address has its own budget.
    get_from(&app, "192.0.2.2:1000", "/v1/auth/nonce", None).await.ok();

    // Health probes are never limited.
    app.get("/healthz", None).await.ok();
}

/// A made-up credential buys no budget: it counts against its address like no credential.
#[sqlx::test(migrator = "MIGRATOR")]
async fn made_up_credentials_share_their_addresses_bucket(pool: PgPool) {
    let burst = 5;
    let app = tight(pool, burst);
    let from = "198.51.100.7:4000";
    let mut served = 0;
    let mut limited = 0;
    for i in 0..60 {
        let credential = match i % 3 {
            0 => format!("Bearer made-up-{i}"),
            1 => format!("Bearer adk_made-up-{i}"),
            _ => format!("Basic dXNlcjp{i}"),
        };
        let reply = get_from(&app, from, "/v1/me", Some(&credential)).await;
        match reply.status {
            StatusCode::UNAUTHORIZED => served += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                reply.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    // A token or two may have dripped in while the loop ran.
    assert!((burst..=burst + 2).contains(&served), "{served} refused as 401");
    assert_eq!(served + limited, 60);

    // The address's anonymous traffic shares that (spent) bucket...
    get_from(&app, from, "/v1/auth/nonce", None)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    // ...and so does every address of its IPv6 /64, while other networks keep their own.
    get_from(&app, "[2001:db8:5:6::1]:1", "/v1/auth/nonce", None).await.ok();
    for _ in 1..burst {
        get_from(&app, "[2001:db8:5:6::2]:1", "/v1/me", Some("Bearer nobody"))
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    get_from(&app, "[2001:db8:5:6::ffff]:1", "/v1/auth/nonce", None)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    get_from(&app, "[2001:db8:5:7::1]:1", "/v1/auth/nonce", None).await.ok();
}

/// A verified user or node has a bucket of its own, wherever it calls from, and one per
/// account: a second session of the same user shares it.
#[sqlx::test(migrator = "MIGRATOR")]
async fn verified_callers_have_their_own_bucket(pool: PgPool) {
    let burst = 4;
    // Sign-ins and node set-up would spend a tight app's budget: set them up through an app
    // with generous limits over the same database (limiters are per app), then use the tight one.
    let setup = TestApp::new(pool.clone());
    let wallet = PrivateKeySigner::random();
    let token = setup.token(&wallet).await;
    let second_session = setup.token(&wallet).await;
    let node = hoster_node(&setup, false).await;
    let node_token = node_token(&setup, &node).await;

    let app = tight(pool, burst);
    app.state.ad_server.refresh().await.unwrap();
    let from = "203.0.113.9:5000";
    for _ in 0..burst {
        get_from(&app, from, "/v1/me", None)
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    get_from(&app, from, "/v1/me", None)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");

    // The address is spent; its signed-in user and its node are not.
    let bearer = format!("Bearer {token}");
    get_from(&app, from, "/v1/me", Some(&bearer)).await.ok();
    let node_bearer = format!("Bearer {node_token}");
    let decision = call_from(&app, from, Method::POST, "/v1/decisions", Some(&node_bearer)).await;
    assert_eq!(decision.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", decision.text);

    // The user's budget follows the user across addresses and sessions.
    for _ in 1..burst {
        get_from(&app, "203.0.113.10:1", "/v1/me", Some(&bearer)).await.ok();
    }
    let second = format!("Bearer {second_session}");
    get_from(&app, "203.0.113.11:1", "/v1/me", Some(&second))
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    // The node still has budget left: its bucket is its own.
    let decision = call_from(
        &app,
        "203.0.113.12:1",
        Method::POST,
        "/v1/decisions",
        Some(&node_bearer),
    )
    .await;
    assert_eq!(decision.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", decision.text);
}

/// Each nonce is a row anyone can have written: a network holds only so many unused ones.
#[sqlx::test(migrator = "MIGRATOR")]
async fn a_nonce_flood_from_one_network_is_capped(pool: PgPool) {
    let cap = 5;
    let app = TestApp::with(pool, |c| c.nonces_per_client = cap.try_into().unwrap());
    let from = "192.0.2.50:7000";
    let mut issued = Vec::new();
    for i in 0..60 {
        let reply = get_from(&app, from, "/v1/auth/nonce", None).await;
        if i < cap {
            issued.push(reply.ok()["nonce"].as_str().unwrap().to_owned());
        } else {
            reply.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
            let wait = retry_after(&reply);
            assert!(
                (590..=600).contains(&wait),
                "retry after the first nonce expires, not {wait}"
            );
        }
    }
    assert_eq!(app.count("siwe_nonces").await, i64::from(cap), "refusals wrote nothing");

    // The rows hold a keyed hash of the network, never the address itself.
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT client_hash FROM siwe_nonces")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(hashes.iter().all(|hash| hash.len() == 32 && *hash == hashes[0]));
    assert!(!hashes[0].windows(4).any(|w| w == [192, 0, 2, 50]));

    // Other networks are not affected.
    get_from(&app, "192.0.2.51:7000", "/v1/auth/nonce", None).await.ok();

    // A nonce used for sign-in or expired makes room for one more.
    let wallet = PrivateKeySigner::random();
    let message = siwe_message(
        wallet.address(),
        DOMAIN,
        &format!("https://{DOMAIN}"),
        CHAIN_ID,
        &issued[0],
        time::OffsetDateTime::now_utc(),
    );
    app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message))
        .await
        .ok();
    get_from(&app, from, "/v1/auth/nonce", None).await.ok();
    get_from(&app, from, "/v1/auth/nonce", None)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    sqlx::query("UPDATE siwe_nonces SET expires_at = now() - interval '1 second' WHERE nonce = $1")
        .bind(&issued[1])
        .execute(&app.pool)
        .await
        .unwrap();
    get_from(&app, from, "/v1/auth/nonce", None).await.ok();
}
