//! Growth programs through the real API: referrals and affiliates, each in its own module,
//! with the sign-in and approval steps both use (the receipts tests borrow
//! `affiliate_code` to bill an attributed advertiser).

use alloy::signers::local::PrivateKeySigner;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::*;

mod affiliates;
pub(crate) mod history;
mod referrals;

/// An API whose admin is `admin`.
fn app_with_admin(pool: PgPool, admin: &PrivateKeySigner) -> TestApp {
    let address = admin.address();
    TestApp::with(pool, |config| config.admin_addresses = vec![address])
}

async fn user_id(pool: &PgPool, wallet: &PrivateKeySigner) -> Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE address = $1")
        .bind(wallet.address().as_slice())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `wallet` applies, `admin` approves it, and it makes a code: the code and its session.
pub(crate) async fn affiliate_code(app: &TestApp, admin: &str, wallet: &PrivateKeySigner) -> (String, String) {
    let token = app.token(wallet).await;
    let applied = app
        .post("/v1/affiliates/me", Some(&token), json!({ "reason": "I run a blog" }))
        .await;
    let id = applied.ok()["userId"].as_str().unwrap().to_owned();
    app.post(
        &format!("/v1/admin/affiliates/{id}/status"),
        Some(admin),
        json!({ "status": "active", "reason": "ok" }),
    )
    .await
    .ok();
    // The role came with the approval: sign in again to carry it.
    let token = app.token(wallet).await;
    let code = app.post("/v1/affiliates/me/codes", Some(&token), json!({})).await;
    (code.ok()["code"].as_str().unwrap().to_owned(), token)
}

/// `referee`'s folded activity moves in ledger order: (amount, running total, high-water mark).
pub(crate) async fn activity_moves(pool: &PgPool, referee: Uuid) -> Vec<(i128, i128, i128)> {
    let moves: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT amount::text, total::text, high::text FROM referral_activity WHERE referee_id = $1 ORDER BY seq",
    )
    .bind(referee)
    .fetch_all(pool)
    .await
    .unwrap();
    moves
        .iter()
        .map(|(a, t, h)| (a.parse().unwrap(), t.parse().unwrap(), h.parse().unwrap()))
        .collect()
}
