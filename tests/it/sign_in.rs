//! Sign-In with Ethereum end to end, sessions, refresh rotation, and every refusal.

use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::support::*;

async fn fresh_nonce(app: &TestApp) -> String {
    app.get("/v1/auth/nonce", None).await.ok()["nonce"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn full_flow_signs_in_and_refreshes(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();

    let challenge = app.get("/v1/auth/nonce", None).await;
    let challenge = challenge.ok();
    assert_eq!(challenge["domain"], DOMAIN);
    assert_eq!(challenge["chainId"], CHAIN_ID);

    let session = app.sign_in(&wallet).await;
    assert_eq!(session["user"]["address"], wallet.address().to_checksum(None));
    assert_eq!(session["user"]["roles"], json!(["viewer"]));

    let token = session["accessToken"].as_str().unwrap();
    let me = app.get("/v1/me", Some(token)).await;
    assert_eq!(me.ok()["address"], wallet.address().to_checksum(None));

    // Signing in again finds the same user.
    let again = app.sign_in(&wallet).await;
    assert_eq!(again["user"]["id"], session["user"]["id"]);
    assert_eq!(app.count("users").await, 1);

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let refresh = session["refreshToken"].as_str().unwrap();
    let rotated = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": refresh }))
        .await;
    let rotated = rotated.ok().clone();
    assert_ne!(rotated["refreshToken"], session["refreshToken"]);
    app.get("/v1/me", Some(rotated["accessToken"].as_str().unwrap()))
        .await
        .ok();

    // Replaying the spent token revokes the whole family, including the rotated token.
    app.post("/v1/auth/refresh", None, json!({ "refreshToken": refresh }))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.post(
        "/v1/auth/refresh",
        None,
        json!({ "refreshToken": rotated["refreshToken"] }),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Sign-out ends a session and is idempotent.
    let other = again["refreshToken"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            app.post("/v1/auth/logout", None, json!({ "refreshToken": other }))
                .await
                .status,
            StatusCode::NO_CONTENT
        );
    }
    app.post("/v1/auth/refresh", None, json!({ "refreshToken": other }))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn configured_admin_addresses_become_admins(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |c| c.admin_addresses = vec![admin.address()]);
    let session = app.sign_in(&admin).await;
    assert_eq!(session["user"]["roles"], json!(["viewer", "admin"]));
}

/// Each bad message is refused with 401 naming the part at fault, and writes nothing.
#[sqlx::test(migrator = "MIGRATOR")]
async fn refuses_bad_messages_and_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let uri = format!("https://{DOMAIN}/login");
    let now = OffsetDateTime::now_utc();

    let nonce = fresh_nonce(&app).await;
    let cases = [
        (
            siwe_message(wallet.address(), "evil.test", &uri, CHAIN_ID, &nonce, now),
            "message.domain",
        ),
        (
            siwe_message(
                wallet.address(),
                DOMAIN,
                "https://evil.test/login",
                CHAIN_ID,
                &nonce,
                now,
            ),
            "message.uri",
        ),
        (
            siwe_message(wallet.address(), DOMAIN, &uri, 1, &nonce, now),
            "message.chainId",
        ),
        (
            siwe_message(
                wallet.address(),
                DOMAIN,
                &uri,
                CHAIN_ID,
                &nonce,
                now + Duration::from_secs(3600),
            ),
            "message.issuedAt",
        ),
        (
            siwe_message(wallet.address(), DOMAIN, &uri, CHAIN_ID, "unknownnonce12345", now),
            "message.nonce",
        ),
    ];
    for (message, field) in cases {
        let reply = app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message)).await;
        assert_eq!(
            reply.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected")["field"],
            field,
            "{}",
            reply.text
        );
    }

    // A message with an expiry in the past.
    let expired = format!(
        "{}\nExpiration Time: {}",
        siwe_message(
            wallet.address(),
            DOMAIN,
            &uri,
            CHAIN_ID,
            &nonce,
            now - Duration::from_secs(120)
        ),
        (now - Duration::from_secs(60))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let reply = app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &expired)).await;
    assert_eq!(
        reply.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected")["field"],
        "message.expirationTime"
    );

    // Signed by another key; signature garbage; not a SIWE message at all.
    let message = siwe_message(wallet.address(), DOMAIN, &uri, CHAIN_ID, &nonce, now);
    let forged = json!({ "message": message, "signature": personal_sign(&PrivateKeySigner::random(), &message) });
    let reply = app.post("/v1/auth/siwe", None, forged).await;
    assert_eq!(
        reply.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected")["field"],
        "signature"
    );
    let garbage = json!({ "message": message, "signature": "0xdeadbeef" });
    let reply = app.post("/v1/auth/siwe", None, garbage).await;
    assert_eq!(
        reply.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected")["field"],
        "signature"
    );
    let reply = app
        .post(
            "/v1/auth/siwe",
            None,
            json!({ "message": "hello", "signature": "0x00" }),
        )
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected")["field"],
        "message"
    );

    assert_eq!(app.count("users").await, 0, "no user was created");
    assert_eq!(app.count("refresh_sessions").await, 0, "no session was created");
    let used: i64 = sqlx::query_scalar("SELECT count(*) FROM siwe_nonces WHERE used_at IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(used, 0, "the nonce is still unused");

    // And the untouched nonce still works for a correct message.
    app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message))
        .await
        .ok();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_nonce_works_once_and_not_after_expiry(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let uri = format!("https://{DOMAIN}");
    let now = OffsetDateTime::now_utc();

    let nonce = fresh_nonce(&app).await;
    let message = siwe_message(wallet.address(), DOMAIN, &uri, CHAIN_ID, &nonce, now);
    app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message))
        .await
        .ok();
    let reused = app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message)).await;
    let problem = reused.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected");
    assert_eq!(problem["field"], "message.nonce");
    assert!(
        problem["detail"].as_str().unwrap().contains("already used"),
        "{problem}"
    );

    let stale = fresh_nonce(&app).await;
    sqlx::query("UPDATE siwe_nonces SET expires_at = now() - interval '1 second' WHERE nonce = $1")
        .bind(&stale)
        .execute(&app.pool)
        .await
        .unwrap();
    let message = siwe_message(wallet.address(), DOMAIN, &uri, CHAIN_ID, &stale, now);
    let expired = app.post("/v1/auth/siwe", None, sign_in_body(&wallet, &message)).await;
    let problem = expired.problem(StatusCode::UNAUTHORIZED, "sign-in-rejected");
    assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn protected_routes_refuse_missing_and_bad_tokens(pool: PgPool) {
    let app = TestApp::new(pool);
    let reply = app.get("/v1/me", None).await;
    reply.problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
    app.get("/v1/me", Some("not-a-jwt"))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // A token signed with another secret.
    let other = TestApp::with(app.pool.clone(), |c| {
        c.jwt_secret = "another-secret-another-secret-12345".into()
    });
    let foreign = other.token(&PrivateKeySigner::random()).await;
    app.get("/v1/me", Some(&foreign))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// The user behind an access token, or the problem slug it is refused with.
async fn me(app: &TestApp, token: &str) -> Result<String, String> {
    let reply = app.get("/v1/me", Some(token)).await;
    if reply.status == StatusCode::OK {
        Ok(reply.body["id"].as_str().unwrap().to_owned())
    } else {
        Err(reply.problem(StatusCode::UNAUTHORIZED, "unauthenticated")["detail"]
            .as_str()
            .unwrap()
            .to_owned())
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn signing_out_stops_the_access_token_at_once(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let session = app.sign_in(&wallet).await;
    let other = app.sign_in(&wallet).await;
    let token = session["accessToken"].as_str().unwrap();
    let other_token = other["accessToken"].as_str().unwrap();
    me(&app, token).await.unwrap();

    let reply = app
        .post(
            "/v1/auth/logout",
            None,
            json!({ "refreshToken": session["refreshToken"] }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let refused = me(&app, token).await.unwrap_err();
    assert!(refused.contains("sign-in has ended"), "{refused}");

    // The user's other sign-in is untouched.
    assert_eq!(me(&app, other_token).await.unwrap(), other["user"]["id"]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_replayed_refresh_token_stops_every_access_token_of_its_sign_in(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let session = app.sign_in(&wallet).await;
    let other = app.sign_in(&wallet).await;
    let refresh = session["refreshToken"].as_str().unwrap();
    let rotated = app
        .post("/v1/auth/refresh", None, json!({ "refreshToken": refresh }))
        .await
        .ok()
        .clone();
    let first = session["accessToken"].as_str().unwrap();
    let second = rotated["accessToken"].as_str().unwrap();
    // Rotation keeps the sign-in live: both its access tokens work until they expire.
    me(&app, first).await.unwrap();
    me(&app, second).await.unwrap();

    app.post("/v1/auth/refresh", None, json!({ "refreshToken": refresh }))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    for token in [first, second] {
        let refused = me(&app, token).await.unwrap_err();
        assert!(refused.contains("sign-in has ended"), "{refused}");
    }
    me(&app, other["accessToken"].as_str().unwrap()).await.unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_access_token_stops_when_its_sign_in_expires(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let token = app.token(&wallet).await;
    me(&app, &token).await.unwrap();
    sqlx::query("UPDATE refresh_sessions SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    me(&app, &token).await.unwrap_err();
}
