//! API keys: created for a held role, shown once, stored hashed, revocable.

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::support::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn lifecycle(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let token = app.token_with_role(&wallet, "hoster").await;

    let created = app
        .post(
            "/v1/api-keys",
            Some(&token),
            json!({ "name": "edge-1", "role": "hoster" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("adk_"));
    assert!(secret.starts_with(created.body["prefix"].as_str().unwrap()));

    // Stored hashed: the secret appears nowhere in the database.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&secret[4..]));

    // The key acts as its owner, with its one role.
    let me = app.get("/v1/me", Some(&secret)).await;
    assert_eq!(me.ok()["address"], wallet.address().to_checksum(None));
    let nodes = app.get("/v1/nodes", Some(&secret)).await;
    nodes.ok();

    // Listed without the secret; its use is recorded (at most once a minute).
    let listed = app.get("/v1/api-keys", Some(&token)).await;
    let listed = listed.ok().as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("secret").is_none());
    assert_eq!(listed[0]["role"], "hoster");
    assert!(listed[0]["lastUsedAt"].is_string(), "{}", listed[0]);

    // Revoked keys stop working; revoking twice is fine.
    let id = created.body["id"].as_str().unwrap();
    for _ in 0..2 {
        let revoked = app
            .call(Method::DELETE, &format!("/v1/api-keys/{id}"), Some(&token), None)
            .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    }
    app.get("/v1/me", Some(&secret))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.get("/v1/me", Some("adk_unknown"))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn keys_are_limited_to_held_roles_and_their_owner(pool: PgPool) {
    let app = TestApp::new(pool);
    let owner = PrivateKeySigner::random();
    let token = app.token_with_role(&owner, "hoster").await;

    let refused = app
        .post(
            "/v1/api-keys",
            Some(&token),
            json!({ "name": "x", "role": "advertiser" }),
        )
        .await;
    refused.problem(StatusCode::FORBIDDEN, "forbidden");
    let blank = app
        .post("/v1/api-keys", Some(&token), json!({ "name": "  ", "role": "hoster" }))
        .await;
    assert_eq!(
        blank.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "name"
    );
    let bad_role = app
        .post("/v1/api-keys", Some(&token), json!({ "name": "x", "role": "overlord" }))
        .await;
    assert_eq!(
        bad_role.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "role"
    );
    assert_eq!(app.count("api_keys").await, 0);

    let created = app
        .post(
            "/v1/api-keys",
            Some(&token),
            json!({ "name": "edge", "role": "hoster" }),
        )
        .await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();

    // A key cannot mint or list keys.
    app.post(
        "/v1/api-keys",
        Some(&secret),
        json!({ "name": "more", "role": "hoster" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    app.get("/v1/api-keys", Some(&secret))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");

    // Another user can neither see nor revoke it.
    let stranger = app.token(&PrivateKeySigner::random()).await;
    assert_eq!(
        app.get("/v1/api-keys", Some(&stranger))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    app.call(Method::DELETE, &format!("/v1/api-keys/{id}"), Some(&stranger), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    app.get("/v1/me", Some(&secret)).await.ok();
}
