//! The advertiser-facing model over HTTP: bad input is refused naming the field and writes
//! nothing; status changes follow the machine and are recorded; tenants are isolated.

use adescrow::platform::db::MIGRATOR;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::fixtures::*;
use crate::support::*;

/// Asserts a 422 naming `field`, and that nothing was written to `table`.
async fn refused(app: &TestApp, token: &str, path: &str, body: Value, field: &str, table: &str) {
    let before = app.count(table).await;
    let reply = app.post(path, Some(token), body).await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        field,
        "{}",
        reply.text
    );
    assert_eq!(app.count(table).await, before, "nothing written for {field}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn brands_refuse_bad_budgets_and_zones(pool: PgPool) {
    let app = TestApp::new(pool);
    let wallet = PrivateKeySigner::random();
    let viewer_token = app.token(&wallet).await;
    let good = json!({ "name": "Acme", "dailyBudget": "1000", "monthlyBudget": "20000", "timeZone": "Europe/Berlin" });
    app.post("/v1/brands", Some(&viewer_token), good.clone())
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let token = app.token_with_role(&wallet, "advertiser").await;

    for (member, value, field) in [
        ("timeZone", json!("Mars/Olympus"), "timeZone"),
        ("dailyBudget", json!("0"), "dailyBudget"),
        ("dailyBudget", json!("-5"), "dailyBudget"),
        ("dailyBudget", json!(1000), "dailyBudget"),
        (
            "monthlyBudget",
            json!("340282366920938463463374607431768211456"),
            "monthlyBudget",
        ),
        ("monthlyBudget", json!("999"), "monthlyBudget"),
        ("name", json!(" "), "name"),
    ] {
        let mut body = good.clone();
        body[member] = value;
        refused(&app, &token, "/v1/brands", body, field, "brands").await;
    }
    let brand = app.post("/v1/brands", Some(&token), good).await;
    assert_eq!(brand.status, StatusCode::CREATED, "{}", brand.text);
    assert_eq!(brand.body["dailyBudget"], "1000");
    let id = brand.body["id"].as_str().unwrap();
    let patched = app
        .patch(
            &format!("/v1/brands/{id}"),
            Some(&token),
            json!({ "timeZone": "Asia/Kolkata", "active": false }),
        )
        .await;
    assert_eq!(patched.ok()["timeZone"], "Asia/Kolkata");
    assert_eq!(patched.body["active"], false);
    let bad_patch = app
        .patch(
            &format!("/v1/brands/{id}"),
            Some(&token),
            json!({ "timeZone": "Nowhere/City" }),
        )
        .await;
    assert_eq!(
        bad_patch.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "timeZone"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn campaigns_ads_and_prices_refuse_bad_input(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    let token = &advertiser.token;
    let good = json!({
        "brandId": advertiser.brand, "name": "Launch", "token": TOKEN,
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z",
    });
    let other = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    for (member, value, field) in [
        ("endsAt", json!("2025-12-31T00:00:00Z"), "endsAt"),
        ("brandId", json!(other.brand), "brandId"),
        ("daypart", json!({ "startHour": 5, "endHour": 5 }), "daypart"),
        ("daypart", json!({ "startHour": 24, "endHour": 5 }), "daypart"),
        ("priority", json!(101), "priority"),
        (
            "frequencyCaps",
            json!({ "impressionsPerHour": 0, "clicksPerHour": 1 }),
            "frequencyCaps.impressionsPerHour",
        ),
        ("targeting", json!({ "regions": [""] }), "targeting.regions[0]"),
        ("token", json!("0x0000000000000000000000000000000000000000"), "token"),
        ("token", json!("not-an-address"), "token"),
    ] {
        let mut body = good.clone();
        body[member] = value;
        refused(&app, token, "/v1/campaigns", body, field, "campaigns").await;
    }

    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": "1000000" })).await;
    let ad_set = app
        .get(
            &format!("/v1/ad-sets?campaignId={}", campaign["id"].as_str().unwrap()),
            Some(token),
        )
        .await
        .ok()[0]["id"]
        .clone();
    let good_ad = json!({
        "adSetId": ad_set, "name": "Ad",
        "creative": { "kind": "image", "title": "Coffee", "mediaUrl": "https://cdn.example/a.png", "clickUrl": "https://acme.example/" },
        "prices": { "cpm": "2000000", "cpc": "50000" },
    });
    for (path, value, field) in [
        ("/creative/clickUrl", json!("javascript:alert(1)"), "creative.clickUrl"),
        (
            "/creative/mediaUrl",
            json!("ftp://cdn.example/a.png"),
            "creative.mediaUrl",
        ),
        ("/creative/mediaUrl", Value::Null, "creative.mediaUrl"),
        ("/prices/cpc", json!("0"), "prices.cpc"),
        ("/prices/cpm", json!("1500"), "prices.cpm"),
        (
            "/prices/cpc",
            json!("340282366920938463463374607431768211456"),
            "prices.cpc",
        ),
        ("/adSetId", json!(uuid::Uuid::new_v4()), "adSetId"),
    ] {
        let mut body = good_ad.clone();
        *body.pointer_mut(path).unwrap() = value;
        refused(&app, token, "/v1/ads", body, field, "ads").await;
    }
    // An ad in another advertiser's ad set is refused as unknown.
    let mut foreign = good_ad.clone();
    foreign["adSetId"] = ad_set.clone();
    refused(&app, &other.token, "/v1/ads", foreign, "adSetId", "ads").await;
    let created = app.post("/v1/ads", Some(token), good_ad).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.body["prices"],
        json!({ "cpm": "2000000", "cpc": "50000", "cpv": null, "cpa": null })
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn status_changes_follow_the_machine_and_are_recorded(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000, 10_000_000).await;
    let token = &advertiser.token;
    let campaign = app
        .post(
            "/v1/campaigns",
            Some(token),
            json!({ "brandId": advertiser.brand, "name": "Launch", "token": TOKEN,
                    "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(campaign.ok()["status"], "DRAFT");
    let id = campaign.body["id"].as_str().unwrap();
    let path = format!("/v1/campaigns/{id}/status");
    let change = |status: &str| json!({ "status": status });

    // Only the scheduler starts campaigns; pausing needs a running one.
    for (to, current) in [("RUNNING", "DRAFT"), ("PAUSED", "DRAFT"), ("BUDGET_REACHED", "DRAFT")] {
        let refused = app.post(&path, Some(token), change(to)).await;
        let problem = refused.problem(StatusCode::CONFLICT, "conflict");
        assert_eq!(problem["field"], "status");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("the campaign is {current}")),
            "{problem}"
        );
    }
    assert_eq!(
        app.post(&path, Some(token), change("SCHEDULED")).await.ok()["status"],
        "SCHEDULED"
    );
    app.post(&path, Some(token), change("RUNNING"))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    advertiser.fund(&pool, &campaign.body, 1_000_000).await;
    assert_eq!(tick(&pool, id, "2026-06-01T00:00:00Z").await, "RUNNING");
    let paused = app
        .post(
            &path,
            Some(token),
            json!({ "status": "PAUSED", "reason": "creative review" }),
        )
        .await;
    assert_eq!(paused.ok()["status"], "PAUSED");
    assert_eq!(
        app.post(&path, Some(token), change("RUNNING")).await.ok()["status"],
        "RUNNING"
    );
    assert_eq!(
        app.post(&path, Some(token), change("COMPLETED")).await.ok()["status"],
        "COMPLETED"
    );
    app.post(&path, Some(token), change("SCHEDULED"))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    app.patch(&format!("/v1/campaigns/{id}"), Some(token), json!({ "name": "Again" }))
        .await
        .problem(StatusCode::CONFLICT, "conflict");

    let history = app.get(&format!("/v1/campaigns/{id}/history"), Some(token)).await;
    let steps: Vec<_> = history
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}>{} {}",
                c["from"].as_str().unwrap_or("-"),
                c["to"].as_str().unwrap(),
                c["cause"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "->DRAFT user",
            "DRAFT>SCHEDULED user",
            "SCHEDULED>RUNNING scheduler",
            "RUNNING>PAUSED user",
            "PAUSED>RUNNING user",
            "RUNNING>COMPLETED user",
        ]
    );
    assert_eq!(history.body[3]["reason"], "creative review");
    let user_id = app.get("/v1/me", Some(token)).await.ok()["id"].clone();
    assert_eq!(history.body[3]["actorId"], user_id);
    assert!(history.body[2]["actorId"].is_null());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn advertisers_see_only_their_own_and_admins_see_all(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
    let alice = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    let bob = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    let (campaign, ad) = alice.campaign(&app, json!({}), json!({ "cpm": "1000000" })).await;
    let id = campaign["id"].as_str().unwrap();

    for path in [
        format!("/v1/brands/{}", alice.brand),
        format!("/v1/campaigns/{id}"),
        format!("/v1/campaigns/{id}/history"),
        format!("/v1/campaigns/{id}/analytics"),
        format!("/v1/ads/{ad}"),
    ] {
        app.get(&path, Some(&bob.token))
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        app.get(&path, Some(&alice.token)).await.ok();
    }
    app.post(
        &format!("/v1/campaigns/{id}/status"),
        Some(&bob.token),
        json!({ "status": "COMPLETED" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    app.patch(&format!("/v1/ads/{ad}"), Some(&bob.token), json!({ "active": false }))
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(
        app.get("/v1/campaigns", Some(&bob.token))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get("/v1/ads", Some(&bob.token))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let admin_token = app.token(&admin).await;
    assert_eq!(
        app.get("/v1/brands", Some(&admin_token))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.get(&format!("/v1/campaigns/{id}"), Some(&admin_token)).await.ok();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn placements_are_seeded_and_admin_managed(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
    let advertiser = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    let placements = app.get("/v1/placements", Some(&advertiser.token)).await;
    let slugs: Vec<_> = placements
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].clone())
        .collect();
    assert_eq!(
        slugs,
        [
            json!("feed-top-banner"),
            json!("post-interstitial"),
            json!("region-page"),
            json!("sidebar")
        ]
    );

    let body = json!({ "slug": "footer-strip", "name": "Footer", "maxAds": 4 });
    app.post("/v1/placements", Some(&advertiser.token), body.clone())
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let admin_token = app.token(&admin).await;
    refused(
        &app,
        &admin_token,
        "/v1/placements",
        json!({ "slug": "Footer Strip", "name": "F", "maxAds": 1 }),
        "slug",
        "placements",
    )
    .await;
    refused(
        &app,
        &admin_token,
        "/v1/placements",
        json!({ "slug": "footer", "name": "F", "maxAds": 11 }),
        "maxAds",
        "placements",
    )
    .await;
    assert_eq!(
        app.post("/v1/placements", Some(&admin_token), body.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    let duplicate = app.post("/v1/placements", Some(&admin_token), body).await;
    assert_eq!(duplicate.problem(StatusCode::CONFLICT, "conflict")["field"], "slug");

    let prices = app
        .call(
            axum::http::Method::PUT,
            &format!("/v1/pricing/{TOKEN}"),
            Some(&admin_token),
            Some(json!({ "cpm": "1234" })),
        )
        .await;
    assert_eq!(
        prices.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "cpm"
    );
}

/// What stopped the scheduler once: an end in year 9999 is refused where it enters.
#[sqlx::test(migrator = "MIGRATOR")]
async fn dates_outside_the_supported_years_are_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = crate::fixtures::Advertiser::new(&app, "UTC", 1_000_000, 10_000_000).await;
    let body = |starts: &str, ends: &str| json!({ "brandId": advertiser.brand, "name": "Far", "token": crate::fixtures::TOKEN, "startsAt": starts, "endsAt": ends });
    for (starts, ends, field) in [
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "endsAt"),
        ("1999-12-31T23:59:59Z", "2030-01-01T00:00:00Z", "startsAt"),
    ] {
        let reply = app
            .post("/v1/campaigns", Some(&advertiser.token), body(starts, ends))
            .await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field
        );
    }
    assert_eq!(app.count("campaigns").await, 0);
    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({})).await;
    let id = campaign["id"].as_str().unwrap();
    let reply = app
        .patch(
            &format!("/v1/campaigns/{id}"),
            Some(&advertiser.token),
            json!({ "endsAt": "9999-12-31T23:59:59Z" }),
        )
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "endsAt"
    );
    let reply = app
        .get(
            &format!("/v1/campaigns/{id}/analytics?to=9999-12-31"),
            Some(&advertiser.token),
        )
        .await;
    assert_eq!(
        reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "to"
    );
}

/// The rules of the domain, whoever calls: a COMPLETED campaign takes no changes and no new
/// ad sets, and names are one line.
#[sqlx::test(migrator = "MIGRATOR")]
async fn completed_campaigns_take_no_changes_and_names_stay_on_one_line(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = Advertiser::new(&app, "UTC", 1_000, 10_000).await;
    let token = &advertiser.token;
    let body = json!({
        "brandId": advertiser.brand, "name": "Launch\u{7}", "token": TOKEN,
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z",
    });
    refused(&app, token, "/v1/campaigns", body, "name", "campaigns").await;
    let brand = json!({ "name": "Two\nlines", "dailyBudget": "1", "monthlyBudget": "1", "timeZone": "UTC" });
    refused(&app, token, "/v1/brands", brand, "name", "brands").await;

    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": "1000000" })).await;
    let id = campaign["id"].as_str().unwrap();
    app.post(
        &format!("/v1/campaigns/{id}/status"),
        Some(token),
        json!({ "status": "COMPLETED" }),
    )
    .await
    .ok();
    let patch = app
        .patch(&format!("/v1/campaigns/{id}"), Some(token), json!({ "priority": 5 }))
        .await;
    let problem = patch.problem(StatusCode::CONFLICT, "conflict");
    assert_eq!(problem["field"], "status");
    assert_eq!(problem["detail"], "the campaign is COMPLETED and can no longer change");
    let ad_set = app
        .post("/v1/ad-sets", Some(token), json!({ "campaignId": id, "name": "Late" }))
        .await;
    assert_eq!(ad_set.problem(StatusCode::CONFLICT, "conflict")["field"], "campaignId");
    assert_eq!(
        app.get(&format!("/v1/campaigns/{id}"), Some(token)).await.ok()["priority"],
        0
    );
}
