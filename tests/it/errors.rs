//! Bad input of every shape gets a problem document naming the cause, and writes nothing.

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

use crate::support::*;

fn raw(
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn malformed_and_mistyped_bodies(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = app.token_with_role(&PrivateKeySigner::random(), "hoster").await;
    let t = Some(token.as_str());
    let json = Some("application/json");

    let reply = app
        .send(raw(Method::POST, "/v1/api-keys", t, json, "{\"name\": "))
        .await;
    reply.problem(StatusCode::BAD_REQUEST, "malformed-body");

    let reply = app
        .send(raw(
            Method::POST,
            "/v1/api-keys",
            t,
            json,
            r#"{"name": 7, "role": "hoster"}"#,
        ))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "name"
    );

    let reply = app
        .send(raw(
            Method::POST,
            "/v1/api-keys",
            t,
            json,
            r#"{"name": "a", "role": "hoster", "admin": true}"#,
        ))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "admin"
    );

    let reply = app
        .send(raw(Method::POST, "/v1/api-keys", t, json, r#"{"name": "a"}"#))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "role"
    );

    let reply = app.send(raw(Method::POST, "/v1/api-keys", t, json, "[1, 2]")).await;
    reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");

    let reply = app
        .send(raw(
            Method::POST,
            "/v1/api-keys",
            t,
            Some("text/plain"),
            r#"{"name":"a","role":"hoster"}"#,
        ))
        .await;
    reply.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let reply = app
        .send(raw(
            Method::POST,
            "/v1/api-keys",
            t,
            None,
            r#"{"name":"a","role":"hoster"}"#,
        ))
        .await;
    reply.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");

    let huge = format!(r#"{{"name": "{}", "role": "hoster"}}"#, "x".repeat(100 * 1024));
    let reply = app.send(raw(Method::POST, "/v1/api-keys", t, json, huge)).await;
    reply.problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");

    let reply = app
        .send(raw(Method::POST, "/v1/api-keys", t, json, vec![0xff, 0xfe, 0x00]))
        .await;
    reply.problem(StatusCode::BAD_REQUEST, "malformed-body");

    assert_eq!(app.count("api_keys").await, 0, "nothing was written");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn routing_errors_are_problems_too(pool: PgPool) {
    let app = TestApp::new(pool);
    let token = app.token_with_role(&PrivateKeySigner::random(), "hoster").await;

    app.get("/v1/nope", None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    let reply = app.call(Method::DELETE, "/v1/me", Some(&token), None).await;
    reply.problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let reply = app.get("/v1/nodes/not-a-uuid", Some(&token)).await;
    reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    app.get("/problems/no-such-problem", None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn problem_types_are_described(pool: PgPool) {
    let app = TestApp::new(pool);
    let reply = app.post("/v1/auth/siwe", None, json!({ "message": 1 })).await;
    let kind = reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["type"]
        .as_str()
        .unwrap()
        .to_owned();
    let described = app.get(&kind, None).await;
    assert_eq!(described.ok()["status"], 422);
    assert_eq!(described.body["type"], kind);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn responses_carry_security_headers(pool: PgPool) {
    let app = TestApp::new(pool);
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(reply.headers.get("x-frame-options").unwrap(), "DENY");
    assert!(reply.headers.get("content-security-policy").is_some());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn cors_allows_only_configured_origins(pool: PgPool) {
    let app = TestApp::with(pool, |c| c.cors_origins = vec!["https://app.adescrow.test".into()]);
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/me")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app.send(preflight("https://app.adescrow.test")).await;
    assert_eq!(
        allowed.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://app.adescrow.test"
    );
    let refused = app.send(preflight("https://evil.test")).await;
    assert!(refused.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

/// Postgres cannot store U+0000 in text: every text field refuses it with a 422 naming the
/// field, before anything is written.
#[sqlx::test(migrator = "MIGRATOR")]
async fn nul_characters_are_refused_naming_the_field(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = crate::fixtures::Advertiser::new(&app, "UTC", 1_000_000, 10_000_000).await;
    let (campaign, ad) = advertiser.campaign(&app, json!({}), json!({})).await;
    let campaign_id = campaign["id"].as_str().unwrap();
    let t = Some(advertiser.token.as_str());
    let nul = "a\u{0}b";
    let cases = [
        (
            Method::POST,
            "/v1/brands".to_owned(),
            json!({ "name": nul, "dailyBudget": "1", "monthlyBudget": "1", "timeZone": "UTC" }),
            "name",
        ),
        (
            Method::PATCH,
            format!("/v1/brands/{}", advertiser.brand),
            json!({ "name": nul }),
            "name",
        ),
        (
            Method::POST,
            "/v1/campaigns".to_owned(),
            json!({ "brandId": advertiser.brand, "name": "x", "token": crate::fixtures::TOKEN, "startsAt": "2026-01-01T00:00:00Z",
                    "endsAt": "2030-01-01T00:00:00Z", "targeting": { "regions": ["eu", nul] } }),
            "targeting.regions[1]",
        ),
        (
            Method::PATCH,
            format!("/v1/campaigns/{campaign_id}"),
            json!({ "name": nul }),
            "name",
        ),
        (
            Method::POST,
            format!("/v1/campaigns/{campaign_id}/status"),
            json!({ "status": "PAUSED", "reason": nul }),
            "reason",
        ),
        (
            Method::POST,
            "/v1/ad-sets".to_owned(),
            json!({ "campaignId": campaign_id, "name": nul }),
            "name",
        ),
        (
            Method::PATCH,
            format!("/v1/ads/{ad}"),
            json!({ "creative": { "kind": "text", "title": nul, "clickUrl": "https://acme.example/" } }),
            "creative.title",
        ),
        (
            Method::POST,
            "/v1/api-keys".to_owned(),
            json!({ "name": nul, "role": "advertiser" }),
            "name",
        ),
    ];
    let rows = async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT count(*) FROM brands) + (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM ad_sets)
                  + (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM campaign_status_changes)",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    let ad_before = app.get(&format!("/v1/ads/{ad}"), t).await.ok().clone();
    for (method, path, body, field) in cases {
        let reply = app.call(method.clone(), &path, t, Some(body)).await;
        let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
        assert_eq!(problem["field"], field, "{method} {path}");
    }
    let query = app.get("/v1/campaigns?brandId=%00", t).await;
    assert_eq!(
        query.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "brandId"
    );

    let after = rows().await;
    assert_eq!(after, before, "nothing was written");
    assert_eq!(app.get(&format!("/v1/ads/{ad}"), t).await.ok(), &ad_before);
}
