//! Affiliates: the workflow from application to termination, rates, codes, and the
//! attribution of an advertiser, once and for good.

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{app_with_admin, user_id};
use crate::fixtures::{Advertiser, TOKEN};

fn campaign_body(advertiser: &Advertiser, code: Option<&str>) -> Value {
    let mut body = json!({
        "brandId": advertiser.brand,
        "name": "Launch",
        "token": TOKEN,
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2030-01-01T00:00:00Z",
    });
    if let Some(code) = code {
        body["affiliateCode"] = json!(code);
    }
    body
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn affiliates_follow_their_workflow_and_attribute_an_advertiser_once(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = app_with_admin(pool.clone(), &admin);
    let admin_token = app.token(&admin).await;

    let partner = PrivateKeySigner::random();
    let token = app.token(&partner).await;
    let applied = app
        .post("/v1/affiliates/me", Some(&token), json!({ "reason": "I run a blog" }))
        .await;
    assert_eq!(applied.status, StatusCode::CREATED);
    assert_eq!(
        (applied.body["status"].clone(), applied.body["rateBps"].clone()),
        (json!("pending"), json!(2000))
    );
    let id = applied.body["userId"].as_str().unwrap().to_owned();
    let again = app
        .post("/v1/affiliates/me", Some(&token), json!({ "reason": "again" }))
        .await;
    again.problem(StatusCode::CONFLICT, "conflict");
    // Only active affiliates have codes, and only admins approve.
    app.post("/v1/affiliates/me/codes", Some(&token), json!({}))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let status_path = format!("/v1/admin/affiliates/{id}/status");
    app.post(
        &status_path,
        Some(&token),
        json!({ "status": "active", "reason": "me" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    let approved = app
        .post(
            &status_path,
            Some(&admin_token),
            json!({ "status": "active", "reason": "fits" }),
        )
        .await;
    assert_eq!(approved.ok()["status"], "active");
    let twice = app
        .post(
            &status_path,
            Some(&admin_token),
            json!({ "status": "active", "reason": "again" }),
        )
        .await;
    let problem = twice.problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(problem["field"], "status");
    assert!(problem["detail"].as_str().unwrap().contains("Active"), "{problem}");
    let rate_path = format!("/v1/admin/affiliates/{id}/rate");
    let too_high = app
        .call(
            Method::PUT,
            &rate_path,
            Some(&admin_token),
            Some(json!({ "rateBps": 6000, "reason": "x" })),
        )
        .await;
    assert_eq!(
        too_high.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "rateBps"
    );
    let rated = app
        .call(
            Method::PUT,
            &rate_path,
            Some(&admin_token),
            Some(json!({ "rateBps": 2500, "reason": "volume" })),
        )
        .await;
    assert_eq!(rated.ok()["rateBps"], 2500);
    let changes: Vec<(Value, Value, Value)> = rated.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["to"].clone(), c["rateBps"].clone(), c["reason"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("pending"), json!(2000), json!("I run a blog")),
            (json!("active"), json!(2000), json!("fits")),
            (json!("active"), json!(2500), json!("volume"))
        ]
    );
    let token = app.token(&partner).await;
    let code = app.post("/v1/affiliates/me/codes", Some(&token), json!({})).await.ok()["code"].clone();
    let code = code.as_str().unwrap().to_owned();
    assert!(code.starts_with("AFF"), "{code}");

    // An advertiser is attributed with its first campaign, once; refusals create nothing.
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000, 10_000_000).await;
    let campaigns = app.count("campaigns").await;
    for (bad, status, slug) in [
        ("AFFZZZZZZZZ", StatusCode::UNPROCESSABLE_ENTITY, "invalid-field"),
        ("AFF0", StatusCode::UNPROCESSABLE_ENTITY, "invalid-field"),
    ] {
        let reply = app
            .post(
                "/v1/campaigns",
                Some(&advertiser.token),
                campaign_body(&advertiser, Some(bad)),
            )
            .await;
        assert_eq!(reply.problem(status, slug)["field"], "affiliateCode", "{}", reply.text);
    }
    assert_eq!(app.count("campaigns").await, campaigns);
    let first = app
        .post(
            "/v1/campaigns",
            Some(&advertiser.token),
            campaign_body(&advertiser, Some(&code.to_lowercase())),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = app
        .post(
            "/v1/campaigns",
            Some(&advertiser.token),
            campaign_body(&advertiser, Some(&code)),
        )
        .await;
    assert_eq!(
        second.problem(StatusCode::CONFLICT, "conflict")["field"],
        "affiliateCode"
    );
    assert_eq!(app.count("campaigns").await, campaigns + 1);
    assert_eq!(app.count("affiliate_attributions").await, 1);

    // Nobody attributes themselves.
    let own = app
        .post("/v1/me/roles", Some(&token), json!({ "role": "advertiser" }))
        .await;
    own.ok();
    let brand = app
        .post(
            "/v1/brands",
            Some(&token),
            json!({ "name": "Mine", "dailyBudget": "100", "monthlyBudget": "1000", "timeZone": "UTC" }),
        )
        .await
        .ok()["id"]
        .clone();
    let mut body = campaign_body(&advertiser, Some(&code));
    body["brandId"] = brand;
    let own = app.post("/v1/campaigns", Some(&token), body).await;
    let detail = own.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["detail"].clone();
    assert!(detail.as_str().unwrap().contains("their own"), "{detail}");

    // A first sign-in with the code attributes too; a suspended affiliate's code counts no more.
    let newcomer = PrivateKeySigner::random();
    app.sign_in_with(&newcomer, Some(&code)).await.ok();
    let channel: String =
        sqlx::query_scalar("SELECT channel::text FROM affiliate_attributions WHERE advertiser_id = $1")
            .bind(user_id(&pool, &newcomer).await)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(channel, "sign_in");
    app.post(
        &status_path,
        Some(&admin_token),
        json!({ "status": "suspended", "reason": "paused" }),
    )
    .await
    .ok();
    let late = app.sign_in_with(&PrivateKeySigner::random(), Some(&code)).await;
    let detail = late.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["detail"].clone();
    assert!(detail.as_str().unwrap().contains("not active"), "{detail}");
    app.post(
        &status_path,
        Some(&admin_token),
        json!({ "status": "terminated", "reason": "ended" }),
    )
    .await
    .ok();
    let back = app
        .post(
            &status_path,
            Some(&admin_token),
            json!({ "status": "active", "reason": "no" }),
        )
        .await;
    assert!(
        back.problem(StatusCode::CONFLICT, "conflict")["detail"]
            .as_str()
            .unwrap()
            .contains("Terminated")
    );
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&token)).await;
    assert_eq!(
        dashboard.ok()["advertisers"].as_array().unwrap().len(),
        2,
        "{}",
        dashboard.text
    );
}
