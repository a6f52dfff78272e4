//! Program budgets and holds over HTTP: admins only, every refusal a problem naming its
//! field, nothing written by a refused request.

use std::collections::BTreeMap;

use adescrow::money::Amount;
use adescrow::money::holds::HoldReason;
use adescrow::money::ledger::{self, NewHold, Party, Posting, Source};
use adescrow::platform::db::MIGRATOR;
use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use crate::support::{CHAIN_ID, TestApp};

const TOKEN: Address = Address::repeat_byte(0x70);
const TREASURY: Address = Address::repeat_byte(0x7e);

fn budget(amount: &str, ends_at: &str) -> serde_json::Value {
    json!({ "name": "Referral rewards", "token": TOKEN, "endsAt": ends_at, "amount": amount })
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn admins_open_and_top_up_program_budgets(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool.clone(), |config| {
        config.admin_addresses = vec![admin.address()];
        config.treasury_address = Some(TREASURY);
    });
    let token = app.token(&admin).await;
    let advertiser = app.token_with_role(&PrivateKeySigner::random(), "advertiser").await;

    app.post(
        "/v1/program-budgets",
        Some(&advertiser),
        budget("1000", "2030-01-01T00:00:00Z"),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    for (body, field) in [
        (budget("0", "2030-01-01T00:00:00Z"), "amount"),
        (budget("1000", "2020-01-01T00:00:00Z"), "endsAt"),
        (
            json!({ "name": " ", "token": TOKEN, "endsAt": "2030-01-01T00:00:00Z", "amount": "1" }),
            "name",
        ),
        (
            json!({ "name": "x", "token": Address::ZERO, "endsAt": "2030-01-01T00:00:00Z", "amount": "1" }),
            "token",
        ),
    ] {
        let reply = app.post("/v1/program-budgets", Some(&token), body).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{}",
            reply.text
        );
    }
    assert_eq!(app.count("escrow_accounts").await, 0, "nothing written by a refusal");

    // Opened under an idempotency key: a retry gets the same budget, not a second one.
    let request = || {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/program-budgets")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "budget-1")
            .body(Body::from(budget("1000", "2030-01-01T00:00:00Z").to_string()))
            .unwrap()
    };
    let created = app.send(request()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let again = app.send(request()).await;
    assert_eq!(again.body, created.body);
    assert_eq!(app.count("escrow_accounts").await, 1);
    let body = &created.body;
    assert_eq!(
        (&body["treasury"], &body["funded"], &body["fundings"][0]["status"]),
        (&json!(TREASURY.to_checksum(None)), &json!("0"), &json!("waiting")),
        "{body}"
    );
    let id = body["id"].as_str().unwrap();

    let topped = app
        .post(
            &format!("/v1/program-budgets/{id}/fundings"),
            Some(&token),
            json!({ "amount": "500" }),
        )
        .await;
    assert_eq!(topped.status, StatusCode::ACCEPTED, "{}", topped.text);
    assert_eq!(topped.body["fundings"].as_array().unwrap().len(), 2);
    app.post(
        &format!("/v1/program-budgets/{}/fundings", Uuid::new_v4()),
        Some(&token),
        json!({ "amount": "500" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    let list = app.get("/v1/program-budgets", Some(&token)).await;
    assert_eq!(list.ok().as_array().unwrap().len(), 1);
    app.get("/v1/program-budgets", Some(&advertiser))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn without_a_treasury_no_budget_opens(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
    let token = app.token(&admin).await;
    app.post(
        "/v1/program-budgets",
        Some(&token),
        budget("1000", "2030-01-01T00:00:00Z"),
    )
    .await
    .problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(app.count("escrow_accounts").await, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_hold_ends_once(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool.clone(), |config| config.admin_addresses = vec![admin.address()]);
    let token = app.token(&admin).await;
    let campaign: Uuid = sqlx::query_scalar(
        "INSERT INTO escrow_accounts (kind, chain_escrow_id, token) VALUES ('campaign', $1, $2) RETURNING id",
    )
    .bind(B256::repeat_byte(0xca).as_slice())
    .bind(TOKEN.as_slice())
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut posting = Posting::default();
    posting.spend(campaign, Amount(100));
    posting.earn(Party::Hoster, Address::repeat_byte(0xa1), Amount(100));
    let posting = posting.hold(NewHold {
        reason: HoldReason::Review,
        until: None,
        note: "a person checks the traffic".into(),
        debtor: None,
        settled_after: None,
    });
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let posted = ledger::post(
        &mut tx,
        CHAIN_ID,
        Source::Adjustment,
        "review-1",
        &BTreeMap::from([(TOKEN, posting)]),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let hold = posted[0].hold_id.unwrap();
    let path = format!("/v1/holds/{hold}/end");

    let reply = app
        .post(&path, Some(&token), json!({ "outcome": "released", "reason": "" }))
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "reason"
    );
    let ended = app
        .post(
            &path,
            Some(&token),
            json!({ "outcome": "released", "reason": "the traffic is real" }),
        )
        .await;
    assert_eq!(ended.ok()["outcome"], "released");
    for outcome in ["released", "reversed"] {
        let again = app
            .post(&path, Some(&token), json!({ "outcome": outcome, "reason": "again" }))
            .await;
        again.problem(StatusCode::CONFLICT, "conflict");
    }
    app.post(
        "/v1/holds/999999/end",
        Some(&token),
        json!({ "outcome": "reversed", "reason": "x" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    let released: String = sqlx::query_scalar("SELECT released::text FROM payee_balances WHERE payee = $1")
        .bind(Address::repeat_byte(0xa1).as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(released, "100", "released once");
}
