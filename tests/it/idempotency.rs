//! `Idempotency-Key`: the same request sent again under a key gets the first answer and
//! takes no second effect; a different request under it is refused; concurrent first
//! requests run once; keys expire, belong to their caller, and are released by failures.

use adescrow::http::idempotency::OPERATIONS;
use adescrow::platform::idempotency::HEADER_NAME;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::task::JoinSet;

use crate::fixtures::Advertiser;
use crate::support::*;
use adescrow::platform::db::MIGRATOR;

const REPLAYED: &str = "idempotent-replayed";

/// A POST of `body` (sent as these exact bytes) with `key`, if any.
async fn post(app: &TestApp, path: &str, token: Option<&str>, key: Option<&[u8]>, body: &str) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(key) = key {
        request = request.header(HEADER_NAME, HeaderValue::from_bytes(key).unwrap());
    }
    app.send(request.body(Body::from(body.to_owned())).unwrap()).await
}

fn brand(name: &str) -> String {
    json!({ "name": name, "dailyBudget": "1000", "monthlyBudget": "30000", "timeZone": "Europe/Berlin" }).to_string()
}

async fn advertiser(app: &TestApp) -> String {
    app.token_with_role(&PrivateKeySigner::random(), "advertiser").await
}

async fn brands_named(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM brands WHERE name = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[track_caller]
fn assert_fresh(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(
        reply.headers.get(REPLAYED).is_none(),
        "a first answer is not marked replayed"
    );
}

#[track_caller]
fn assert_replay_of(reply: &Reply, first: &Reply) {
    assert_eq!(reply.status, first.status, "{}", reply.text);
    assert_eq!(reply.headers[REPLAYED], "true");
    assert_eq!(reply.text, first.text, "the stored answer, byte for byte");
    assert_eq!(
        reply.headers.get(header::CONTENT_TYPE),
        first.headers.get(header::CONTENT_TYPE)
    );
    assert_eq!(reply.headers.get(header::LOCATION), first.headers.get(header::LOCATION));
}

#[track_caller]
fn assert_key_problem(reply: &Reply, status: StatusCode, slug: &str) {
    assert_eq!(reply.problem(status, slug)["field"], HEADER_NAME, "{}", reply.text);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_same_request_again_gets_the_first_answer_and_no_second_effect(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let key = Some(&b"9b1f0c1e-2a51-4f5e-a0a4-6f6c1d0c9e11"[..]);

    let first = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_fresh(&first, StatusCode::CREATED);
    let again = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_replay_of(&again, &first);
    assert_eq!(brands_named(&app, "Acme").await, 1, "one brand for one key");

    // Without a key a request runs as it always did.
    post(&app, "/v1/brands", Some(&token), None, &brand("Acme")).await.ok();
    post(&app, "/v1/brands", Some(&token), None, &brand("Acme")).await.ok();
    assert_eq!(brands_named(&app, "Acme").await, 3);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_status_change_sent_again_is_replayed_not_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    let alice = Advertiser::new(&app, "Europe/Berlin", 1_000_000, 30_000_000).await;
    let campaign = app
        .post(
            "/v1/campaigns",
            Some(&alice.token),
            json!({ "brandId": alice.brand, "name": "Launch", "token": crate::fixtures::TOKEN,
                    "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/campaigns/{campaign}/status");
    let body = json!({ "status": "SCHEDULED" }).to_string();
    let key = Some(&b"schedule-launch"[..]);

    let first = post(&app, &path, Some(&alice.token), key, &body).await;
    assert_fresh(&first, StatusCode::OK);
    assert_eq!(first.body["status"], "SCHEDULED");
    assert_replay_of(&post(&app, &path, Some(&alice.token), key, &body).await, &first);
    // The same change without the key is refused by the status machine.
    post(&app, &path, Some(&alice.token), None, &body)
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let history = app
        .get(&format!("/v1/campaigns/{campaign}/history"), Some(&alice.token))
        .await;
    let scheduled = history
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"] == "SCHEDULED")
        .count();
    assert_eq!(scheduled, 1, "one change for one key: {}", history.text);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_different_request_under_a_used_key_is_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    let alice = Advertiser::new(&app, "Europe/Berlin", 1_000_000, 30_000_000).await;
    let key = Some(&b"k-1"[..]);

    let first = post(&app, "/v1/brands", Some(&alice.token), key, &brand("First")).await;
    assert_fresh(&first, StatusCode::CREATED);
    let other = post(&app, "/v1/brands", Some(&alice.token), key, &brand("Second")).await;
    assert_key_problem(&other, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    assert_eq!(brands_named(&app, "Second").await, 0, "no second effect");
    // The same JSON spelled differently is a different body.
    let spaced = brand("First").replace(',', ", ");
    let respelled = post(&app, "/v1/brands", Some(&alice.token), key, &spaced).await;
    assert_key_problem(&respelled, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    // The first answer is still there.
    assert_replay_of(
        &post(&app, "/v1/brands", Some(&alice.token), key, &brand("First")).await,
        &first,
    );

    // A key belongs to one route: under another it is a key of its own.
    let campaign = json!({ "brandId": alice.brand, "name": "Launch", "token": crate::fixtures::TOKEN,
                           "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" });
    let created = post(&app, "/v1/campaigns", Some(&alice.token), key, &campaign.to_string()).await;
    assert_fresh(&created, StatusCode::CREATED);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_first_requests_take_effect_once(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (app, token) = (app.clone(), token.clone());
        requests.spawn(async move { post(&app, "/v1/brands", Some(&token), Some(b"one-key"), &brand("Racing")).await });
    }
    let replies = requests.join_all().await;

    let fresh: Vec<_> = replies
        .iter()
        .filter(|r| r.headers.get(REPLAYED).is_none() && r.status.is_success())
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request ran: {replies:#?}");
    for reply in &replies {
        if reply.status == StatusCode::CONFLICT {
            assert_key_problem(reply, StatusCode::CONFLICT, "conflict");
            assert_eq!(reply.headers[header::RETRY_AFTER], "1");
        } else if reply.headers.get(REPLAYED).is_some() {
            assert_replay_of(reply, fresh[0]);
        } else {
            assert_fresh(reply, StatusCode::CREATED);
        }
    }
    assert_eq!(brands_named(&app, "Racing").await, 1, "one effect");
    // Once the first has answered, every retry is its replay.
    let retry = post(&app, "/v1/brands", Some(&token), Some(b"one-key"), &brand("Racing")).await;
    assert_replay_of(&retry, fresh[0]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_key_past_its_lifetime_is_a_new_request(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let key = Some(&b"short-lived"[..]);
    let backdate =
        || sqlx::query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'").execute(&app.pool);

    assert_fresh(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await,
        StatusCode::CREATED,
    );
    backdate().await.unwrap();
    let second = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_fresh(&second, StatusCode::CREATED);
    assert_eq!(brands_named(&app, "Acme").await, 2);
    assert_replay_of(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await,
        &second,
    );
    // An expired key is free for any request.
    backdate().await.unwrap();
    assert_fresh(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Other")).await,
        StatusCode::CREATED,
    );

    // The lifetime comes from the configuration, counted from the first use.
    let lifetime: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM expires_at - locked_at)::float8 FROM idempotency_keys")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!((lifetime - 86_400.0).abs() < 1.0, "{lifetime}");

    // Housekeeping deletes expired keys and keeps live ones.
    post(&app, "/v1/brands", Some(&token), Some(b"live"), &brand("Live"))
        .await
        .ok();
    sqlx::query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'short-lived'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.state.housekeeping().await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, ["live"]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_lifetime_shorter_than_a_request_may_run_is_refused(pool: PgPool) {
    let mut config = config();
    config.idempotency_key_lifetime = config.request_timeout;
    assert!(adescrow::http::AppState::new(config, pool).is_err());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn keys_of_two_callers_do_not_collide(pool: PgPool) {
    let app = TestApp::new(pool);
    let (alice, bob) = (advertiser(&app).await, advertiser(&app).await);
    let key = Some(&b"shared-key"[..]);

    let hers = post(&app, "/v1/brands", Some(&alice), key, &brand("Acme")).await;
    let his = post(&app, "/v1/brands", Some(&bob), key, &brand("Acme")).await;
    assert_fresh(&hers, StatusCode::CREATED);
    assert_fresh(&his, StatusCode::CREATED);
    assert_ne!(hers.body["id"], his.body["id"]);
    assert_eq!(brands_named(&app, "Acme").await, 2);
    // Each replays their own.
    assert_replay_of(&post(&app, "/v1/brands", Some(&bob), key, &brand("Acme")).await, &his);
    assert_replay_of(
        &post(&app, "/v1/brands", Some(&alice), key, &brand("Acme")).await,
        &hers,
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn failures_do_not_pin_the_key(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let token = app.token(&wallet).await;
    let key = Some(&b"retry-me"[..]);
    let keys = || app.count("idempotency_keys");

    // 403: the caller lacks the role; once they take it, the same key runs.
    post(&app, "/v1/brands", Some(&token), key, &brand("Acme"))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(keys().await, 0);
    app.post("/v1/me/roles", Some(&token), json!({ "role": "advertiser" }))
        .await
        .ok();

    // 422: the body is refused; corrected, it runs under the same key.
    let bad_zone = brand("Acme").replace("Europe/Berlin", "Mars/Olympus");
    post(&app, "/v1/brands", Some(&token), key, &bad_zone)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    assert_eq!(keys().await, 0);

    // 500: the database refuses the write; once it accepts, the retry runs.
    sqlx::query("ALTER TABLE brands ADD CONSTRAINT test_refuses_acme CHECK (name <> 'Acme') NOT VALID")
        .execute(&app.pool)
        .await
        .unwrap();
    post(&app, "/v1/brands", Some(&token), key, &brand("Acme"))
        .await
        .problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert_eq!(keys().await, 0);
    sqlx::query("ALTER TABLE brands DROP CONSTRAINT test_refuses_acme")
        .execute(&app.pool)
        .await
        .unwrap();

    let created = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_fresh(&created, StatusCode::CREATED);
    assert_replay_of(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await,
        &created,
    );
    assert_eq!(brands_named(&app, "Acme").await, 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_request_left_in_flight_is_a_409_until_its_lock_times_out(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let key = Some(&b"crashed"[..]);
    assert_fresh(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await,
        StatusCode::CREATED,
    );
    // As if the process had died while running it.
    let in_flight = |locked: &'static str| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE idempotency_keys SET status = NULL, content_type = NULL, location = NULL, body = NULL,
                 completed_at = NULL, locked_at = now() - interval '{locked}'"
        )))
        .execute(&app.pool)
    };

    in_flight("0 seconds").await.unwrap();
    let busy = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_key_problem(&busy, StatusCode::CONFLICT, "conflict");
    assert_eq!(busy.headers[header::RETRY_AFTER], "1");
    // A different request under the key is still a different request.
    let other = post(&app, "/v1/brands", Some(&token), key, &brand("Other")).await;
    assert_key_problem(&other, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");

    // Older than the request timeout (10 s in tests) and its slack: taken over.
    in_flight("1 minute").await.unwrap();
    let taken = post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await;
    assert_fresh(&taken, StatusCode::CREATED);
    assert_replay_of(
        &post(&app, "/v1/brands", Some(&token), key, &brand("Acme")).await,
        &taken,
    );
    assert_eq!(brands_named(&app, "Acme").await, 2);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn malformed_keys_are_refused_naming_the_header(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let long = vec![b'k'; 256];
    for key in [&b""[..], &long, b"two words", b"tab\there", b"caf\xc3\xa9"] {
        let reply = post(&app, "/v1/brands", Some(&token), Some(key), &brand("Acme")).await;
        assert_key_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    }
    let twice = Request::builder()
        .method(Method::POST)
        .uri("/v1/brands")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(HEADER_NAME, "a")
        .header(HEADER_NAME, "a")
        .body(Body::from(brand("Acme")))
        .unwrap();
    assert_key_problem(
        &app.send(twice).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-field",
    );
    assert_eq!(brands_named(&app, "Acme").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);

    let longest = vec![b'~'; 255];
    assert_fresh(
        &post(&app, "/v1/brands", Some(&token), Some(&longest), &brand("Acme")).await,
        StatusCode::CREATED,
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn keys_are_not_kept_for_anonymous_callers_or_other_operations(pool: PgPool) {
    let app = TestApp::new(pool);
    let key = Some(&b"anon"[..]);
    post(&app, "/v1/brands", None, key, &brand("Acme"))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    post(&app, "/v1/brands", Some("not-a-token"), key, &brand("Acme"))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Taking a role is idempotent by itself: the header is not looked at.
    let token = app.token(&PrivateKeySigner::random()).await;
    let role = json!({ "role": "advertiser" }).to_string();
    post(&app, "/v1/me/roles", Some(&token), key, &role).await.ok();
    let again = post(&app, "/v1/me/roles", Some(&token), Some(b"two words"), &role).await;
    assert!(again.status.is_success(), "{}", again.text);
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bodies_over_the_limit_are_refused_as_without_a_key(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = advertiser(&app).await;
    let huge = brand(&"x".repeat(70 * 1024));
    for key in [None, Some(&b"big"[..])] {
        post(&app, "/v1/brands", Some(&token), key, &huge)
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    }
    assert_eq!(app.count("idempotency_keys").await, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_document_offers_the_key_where_the_api_takes_it(pool: PgPool) {
    let doc = TestApp::new(pool).get("/openapi.json", None).await.ok().clone();
    let mut offered = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let takes_key = op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == HEADER_NAME && p["in"] == "header"));
            if takes_key {
                offered.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    let mut expected: Vec<_> = OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let mut listed: Vec<_> = offered.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected, "every operation that takes a key, and only those");

    for (method, path, op) in &offered {
        let operation = format!("{method} {path}");
        let parameter = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == HEADER_NAME)
            .unwrap();
        assert_eq!(parameter["required"], false, "{operation}: the key is optional");
        assert_eq!(parameter["schema"]["maxLength"], 255, "{operation}");
        let responses = &op["responses"];
        assert!(responses["409"]["headers"]["retry-after"].is_object(), "{operation}");
        assert!(
            responses["409"]["description"].as_str().unwrap().contains(HEADER_NAME),
            "{operation}"
        );
        assert!(
            responses["422"]["description"].as_str().unwrap().contains(HEADER_NAME),
            "{operation}"
        );
        let successes: Vec<&Value> = responses
            .as_object()
            .unwrap()
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, r)| r)
            .collect();
        assert!(!successes.is_empty(), "{operation}");
        for success in successes {
            assert!(
                success["headers"][REPLAYED].is_object(),
                "{operation}: replays are marked"
            );
        }
        // Keys are kept per caller, so every such operation needs one.
        let security = op["security"].as_array().cloned().unwrap_or_default();
        assert!(
            !security.is_empty() && security.iter().all(|r| r.as_object().is_some_and(|r| !r.is_empty())),
            "{operation}: authenticated"
        );
    }
}
