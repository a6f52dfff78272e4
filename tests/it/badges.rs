//! Badges: awarded from authoritative state by the badge job, and revoked with a reason
//! when their basis goes, each exactly once however many runs race; public per wallet, with
//! the caller's progress toward each next tier.

use adescrow::badges::job::{self, Judged};
use adescrow::leaderboards::Category;
use adescrow::leaderboards::tally::{self, Tally};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::support::*;

/// Two badge jobs at once, as two processes would run them without the leader lock.
async fn race(pool: &PgPool) -> Judged {
    let run = || async {
        job::measure(pool, CHAIN_ID).await.unwrap();
        job::judge(pool).await.unwrap()
    };
    let (a, b) = tokio::join!(run(), run());
    Judged {
        awarded: a.awarded + b.awarded,
        revoked: a.revoked + b.revoked,
    }
}

/// A consent event on chain for `wallet`: a grant until far ahead, or a revocation.
async fn consent(pool: &PgPool, wallet: Address, block: i64, granted: bool) {
    sqlx::query(
        "INSERT INTO mirror_consent_events (chain_id, block_number, log_index, tx_hash, user_address, scope, expiry)
         VALUES ($1, $2, 0, decode(repeat('ab', 32), 'hex'), $3, decode(repeat('cd', 32), 'hex'), $4)",
    )
    .bind(CHAIN_ID as i64)
    .bind(block)
    .bind(wallet.as_slice())
    .bind(granted.then_some(4_000_000_000i64))
    .execute(pool)
    .await
    .unwrap();
}

async fn events(pool: &PgPool, kind: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT badge::text, tier::text FROM badge_events WHERE kind = $1::badge_event_kind ORDER BY id")
        .bind(kind)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn held(app_reply: &Value) -> Vec<(String, String)> {
    app_reply
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["badge"].as_str().unwrap().to_owned(),
                b["tier"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(badge: &str, tier: &str) -> (String, String) {
    (badge.to_owned(), tier.to_owned())
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn badges_are_awarded_and_revoked_exactly_once_however_many_runs_race(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let wallet = PrivateKeySigner::random();
    let token = app.token(&wallet).await;
    let address = wallet.address();

    // Billing booked 10,000 impressions on the wallet's nodes; its wallet holds one consent.
    let mut tally = Tally::default();
    tally.add(Category::ImpressionsServed, Address::ZERO, address, 10_000);
    tally::record_declared(&mut pool.acquire().await.unwrap(), OffsetDateTime::now_utc(), &tally)
        .await
        .unwrap();
    consent(&pool, address, 1, true).await;

    let judged = race(&pool).await;
    let awarded = vec![
        pair("serving", "bronze"),
        pair("serving", "silver"),
        pair("consent", "bronze"),
    ];
    assert_eq!(
        judged,
        Judged { awarded: 3, revoked: 0 },
        "each tier once between both runs"
    );
    let mut logged = events(&pool, "awarded").await;
    logged.sort();
    let mut expected = awarded.clone();
    expected.sort();
    assert_eq!(logged, expected);
    let public = app.get(&format!("/v1/badges/{address}"), None).await;
    assert_eq!(
        held(public.ok()),
        [
            pair("serving", "bronze"),
            pair("serving", "silver"),
            pair("consent", "bronze")
        ]
    );

    let progress = app.get("/v1/me/badges", Some(&token)).await;
    let serving = progress
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["badge"] == "serving")
        .unwrap()
        .clone();
    assert_eq!(serving["value"], 10_000);
    assert_eq!(serving["held"], serde_json::json!(["bronze", "silver"]));
    assert_eq!(serving["next"]["tier"], "gold");
    assert_eq!(serving["next"]["remaining"], 90_000);

    // The wallet revokes its consent on chain: the badge goes, once, with its reason.
    consent(&pool, address, 2, false).await;
    assert_eq!(race(&pool).await, Judged { awarded: 0, revoked: 1 });
    assert_eq!(events(&pool, "revoked").await, [pair("consent", "bronze")]);
    let public = app.get(&format!("/v1/badges/{address}"), None).await;
    assert_eq!(
        held(public.ok()),
        [pair("serving", "bronze"), pair("serving", "silver")]
    );
    let progress = app.get("/v1/me/badges", Some(&token)).await;
    let consent_progress = progress
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["badge"] == "consent")
        .unwrap()
        .clone();
    assert_eq!(consent_progress["held"], serde_json::json!([]));
    assert_eq!(
        consent_progress["revoked"][0]["reason"], "consent fell to 0, below the bronze tier's 1",
        "{consent_progress}"
    );
    // Nothing changed: nothing to do.
    assert_eq!(race(&pool).await, Judged::default());

    // Granted again: awarded again, and logged again.
    consent(&pool, address, 3, true).await;
    assert_eq!(race(&pool).await, Judged { awarded: 1, revoked: 0 });
    assert_eq!(events(&pool, "awarded").await.len(), 4);

    // The catalog is public; a wallet that is not an address is refused by name.
    let catalog = app.get("/v1/badges", None).await;
    assert_eq!(catalog.ok()["badges"].as_array().unwrap().len(), 7);
    assert_eq!(
        catalog.body["badges"][0]["thresholds"],
        serde_json::json!([1000, 10000, 100000, 1000000])
    );
    app.get("/v1/badges/0x1234", None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
    app.get("/v1/me/badges", None)
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}
