//! Promotions over HTTP against real Postgres: admins create and steer them, their status
//! follows their dates and flags, advertisers redeem codes within every limit, and each
//! refusal is a problem naming what, with nothing written.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;

use adescrow::platform::db::MIGRATOR;

use crate::fixtures::{Advertiser, TOKEN, bill};
use crate::support::{Reply, TestApp};

fn at(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).unwrap()
}

/// A promotion body: `offer` running from an hour ago for 30 days, published, merged with
/// `extra`.
fn promotion(offer: Value, extra: Value) -> Value {
    let mut body = json!({
        "name": "Spring",
        "offer": offer,
        "startsAt": at(-time::Duration::hours(1)),
        "endsAt": at(time::Duration::days(30)),
        "publish": true,
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

fn discount() -> Value {
    json!({ "kind": "feeDiscount", "bps": 5000, "days": 30 })
}

struct Admin {
    app: TestApp,
    token: String,
}

impl Admin {
    async fn new(pool: PgPool) -> Admin {
        let admin = PrivateKeySigner::random();
        let app = TestApp::with(pool, |config| config.admin_addresses = vec![admin.address()]);
        let token = app.token(&admin).await;
        Admin { app, token }
    }

    async fn create(&self, body: Value) -> Reply {
        self.app.post("/v1/admin/promotions", Some(&self.token), body).await
    }

    async fn act(&self, id: &str, action: &str) -> Reply {
        self.app
            .post(
                &format!("/v1/admin/promotions/{id}/actions"),
                Some(&self.token),
                json!({ "action": action }),
            )
            .await
    }
}

/// An advertiser with one campaign in [`TOKEN`] that it funded with `funded` (mirrored).
async fn advertiser_with_campaign(app: &TestApp, funded: u128) -> (Advertiser, String) {
    let advertiser = Advertiser::new(app, "UTC", 10u128.pow(12), 10u128.pow(13)).await;
    let (campaign, _) = advertiser.campaign(app, json!({}), json!({ "cpm": "1000000" })).await;
    if funded > 0 {
        advertiser.fund(&app.pool, &campaign, funded).await;
    }
    (advertiser, campaign["id"].as_str().unwrap().to_owned())
}

async fn redeem(app: &TestApp, token: &str, code: &str, campaign: &str) -> Reply {
    app.post(
        &format!("/v1/promotions/{code}/redemptions"),
        Some(token),
        json!({ "campaignId": campaign }),
    )
    .await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_promotions_status_follows_its_dates_and_flags(pool: PgPool) {
    let admin = Admin::new(pool.clone()).await;
    let created = admin
        .create(promotion(
            discount(),
            json!({ "code": " spring-25 ", "publish": false }),
        ))
        .await;
    let created = created.ok().clone();
    assert_eq!(created["code"], "SPRING-25", "stored upper case, trimmed");
    assert_eq!(created["status"], "draft");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        admin.app.get("/v1/promotions/spring-25", None).await.status,
        StatusCode::NOT_FOUND,
        "a draft is nobody's to see"
    );

    assert_eq!(admin.act(id, "publish").await.ok()["status"], "active");
    assert_eq!(admin.act(id, "pause").await.ok()["status"], "paused");
    let again = admin.act(id, "pause").await;
    assert_eq!(again.problem(StatusCode::CONFLICT, "conflict")["field"], "action");
    assert!(again.text.contains("paused"), "{}", again.text);
    assert_eq!(admin.act(id, "resume").await.ok()["status"], "active");
    assert_eq!(admin.act(id, "end").await.ok()["status"], "completed");
    admin.act(id, "resume").await.problem(StatusCode::CONFLICT, "conflict");

    let later = admin
        .create(promotion(
            json!({ "kind": "freeTrial", "impressions": 100 }),
            json!({ "startsAt": at(time::Duration::days(1)) }),
        ))
        .await;
    let later = later.ok().clone();
    assert_eq!(later["status"], "scheduled");
    assert!(later["code"].as_str().unwrap().starts_with("PROMO"), "a generated code");

    // The public page of a published code, in any case, is a visit in the funnel.
    let code = later["code"].as_str().unwrap().to_lowercase();
    let shown = admin.app.get(&format!("/v1/promotions/{code}"), None).await;
    assert_eq!(shown.ok()["offer"]["impressions"], 100);
    assert_eq!(shown.body["status"], "scheduled");
    let listed = admin.app.get("/v1/admin/promotions", Some(&admin.token)).await;
    let listed = listed.ok().as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["funnel"]["visits"], 1, "newest first, one visit");
    assert_eq!(listed[1]["funnel"]["visits"], 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_promotions_are_refused_naming_the_field(pool: PgPool) {
    let admin = Admin::new(pool.clone()).await;
    admin
        .create(promotion(discount(), json!({ "code": "TAKEN" })))
        .await
        .ok();
    let advertiser = admin
        .app
        .token_with_role(&PrivateKeySigner::random(), "advertiser")
        .await;
    admin
        .app
        .post(
            "/v1/admin/promotions",
            Some(&advertiser),
            promotion(discount(), json!({})),
        )
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let unknown_budget = json!({ "kind": "adCredit", "budget": uuid::Uuid::new_v4(), "credit": "100" });
    for (body, status, field) in [
        (
            promotion(discount(), json!({ "code": "taken" })),
            StatusCode::CONFLICT,
            Some("code"),
        ),
        (
            promotion(discount(), json!({ "code": "-BAD" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("code"),
        ),
        (
            promotion(json!({ "kind": "feeDiscount", "bps": 0, "days": 3 }), json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("offer.bps"),
        ),
        (
            promotion(discount(), json!({ "endsAt": at(-time::Duration::days(2)) })),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("endsAt"),
        ),
        (
            promotion(discount(), json!({ "minBudget": "1000" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("minBudget"),
        ),
        (
            promotion(discount(), json!({ "perUser": 0 })),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("perUser"),
        ),
        (promotion(unknown_budget, json!({})), StatusCode::NOT_FOUND, None),
    ] {
        let reply = admin.create(body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field, "{}", reply.text);
        }
    }
    assert_eq!(admin.app.count("promotions").await, 1, "only the first was written");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn redemptions_are_refused_for_each_limit_with_nothing_written(pool: PgPool) {
    let admin = Admin::new(pool.clone()).await;
    let app = &admin.app;
    let (advertiser, campaign) = advertiser_with_campaign(app, 5_000).await;
    let code = |body: Reply| body.ok()["code"].as_str().unwrap().to_owned();

    let scheduled = code(
        admin
            .create(promotion(
                discount(),
                json!({ "startsAt": at(time::Duration::days(1)) }),
            ))
            .await,
    );
    let ended = admin.create(promotion(discount(), json!({}))).await.ok().clone();
    admin.act(ended["id"].as_str().unwrap(), "end").await.ok();
    let paused = admin.create(promotion(discount(), json!({}))).await.ok().clone();
    admin.act(paused["id"].as_str().unwrap(), "pause").await.ok();
    let minimum = code(
        admin
            .create(promotion(discount(), json!({ "token": TOKEN, "minBudget": "5001" })))
            .await,
    );
    let other_token = code(
        admin
            .create(promotion(discount(), json!({ "token": Address::repeat_byte(0x71) })))
            .await,
    );
    let first_time = code(
        admin
            .create(promotion(discount(), json!({ "firstTimeOnly": true })))
            .await,
    );
    let open = code(
        admin
            .create(promotion(discount(), json!({ "token": TOKEN, "minBudget": "5000" })))
            .await,
    );
    let (_, someone_elses) = advertiser_with_campaign(app, 5_000).await;

    for (code, campaign, status, field, says) in [
        (
            "NOSUCHCODE",
            campaign.as_str(),
            StatusCode::NOT_FOUND,
            None,
            "promotion",
        ),
        (
            &scheduled,
            &campaign,
            StatusCode::CONFLICT,
            Some("code"),
            "before it starts",
        ),
        (
            ended["code"].as_str().unwrap(),
            &campaign,
            StatusCode::CONFLICT,
            Some("code"),
            "ended",
        ),
        (
            paused["code"].as_str().unwrap(),
            &campaign,
            StatusCode::CONFLICT,
            Some("code"),
            "paused",
        ),
        (
            &minimum,
            &campaign,
            StatusCode::CONFLICT,
            Some("campaignId"),
            "at least 5001",
        ),
        (
            &other_token,
            &campaign,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("campaignId"),
            "paying in",
        ),
        (&open, &someone_elses, StatusCode::NOT_FOUND, None, "campaign"),
    ] {
        let reply = redeem(app, &advertiser.token, code, campaign).await;
        assert_eq!(reply.status, status, "{code}: {}", reply.text);
        assert_eq!(reply.body["field"].as_str(), field, "{code}: {}", reply.text);
        assert!(reply.text.contains(says), "{code}: {}", reply.text);
    }
    assert_eq!(app.count("promo_redemptions").await, 0);

    // The first redemption goes; a second by the same advertiser is refused.
    let redeemed = redeem(app, &advertiser.token, &open.to_lowercase(), &campaign).await;
    assert_eq!(redeemed.status, StatusCode::CREATED, "{}", redeemed.text);
    assert_eq!(redeemed.body["offer"], "feeDiscount");
    assert_eq!(redeemed.body["discountBps"], 5000);
    let second = redeem(app, &advertiser.token, &open, &campaign).await;
    assert_eq!(second.problem(StatusCode::CONFLICT, "conflict")["field"], "code");
    assert!(second.text.contains("as often as it allows (1)"), "{}", second.text);

    // A first-time offer is refused once the advertiser's campaigns were billed.
    let ad = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM ads LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    bill(&pool, &campaign, &ad.to_string(), 10, OffsetDateTime::now_utc()).await;
    let returning = redeem(app, &advertiser.token, &first_time, &campaign).await;
    assert_eq!(returning.problem(StatusCode::CONFLICT, "conflict")["field"], "code");
    assert!(returning.text.contains("never billed"), "{}", returning.text);

    let mine = app.get("/v1/me/promotions", Some(&advertiser.token)).await;
    assert_eq!(mine.ok().as_array().unwrap().len(), 1);
    let counted: i32 = sqlx::query_scalar("SELECT sum(redemptions)::int FROM promotions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counted, 1, "refusals count nothing");
    let listed = app.get("/v1/admin/promotions", Some(&admin.token)).await;
    let funnel = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == open.as_str())
        .unwrap()["funnel"]
        .clone();
    assert_eq!(funnel["redemptions"], 1);
    assert_eq!(funnel["campaignsFunded"], 1, "its advertiser funded it");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_code_capped_at_ten_gives_ten_to_a_hundred_at_once(pool: PgPool) {
    let admin = Admin::new(pool.clone()).await;
    let capped = admin
        .create(promotion(
            discount(),
            json!({ "code": "TEN-ONLY", "maxRedemptions": 10 }),
        ))
        .await;
    let id = capped.ok()["id"].as_str().unwrap().to_owned();
    let mut advertisers = Vec::new();
    for _ in 0..100 {
        advertisers.push(advertiser_with_campaign(&admin.app, 0).await);
    }
    let mut requests = JoinSet::new();
    for (advertiser, campaign) in &advertisers {
        let (app, token, campaign) = (admin.app.clone(), advertiser.token.clone(), campaign.clone());
        requests.spawn(async move { redeem(&app, &token, "ten-only", &campaign).await });
    }
    let replies = requests.join_all().await;
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 10, "exactly the cap");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(reply.problem(StatusCode::CONFLICT, "conflict")["field"], "code");
        assert!(reply.text.contains("every redemption"), "{}", reply.text);
    }
    let capped = admin
        .app
        .get(&format!("/v1/admin/promotions/{id}"), Some(&admin.token))
        .await;
    assert_eq!(capped.ok()["redemptions"], 10);
    assert_eq!(capped.body["status"], "completed", "every redemption taken");
    assert_eq!(capped.body["funnel"]["redemptions"], 10);
    assert_eq!(admin.app.count("promo_redemptions").await, 10);

    // One advertiser trying the same per-user-once code five times at once gets it once.
    let once = admin
        .create(promotion(discount(), json!({ "code": "ONCE-EACH" })))
        .await;
    once.ok();
    let (advertiser, campaign) = &advertisers[0];
    let mut requests = JoinSet::new();
    for _ in 0..5 {
        let (app, token, campaign) = (admin.app.clone(), advertiser.token.clone(), campaign.clone());
        requests.spawn(async move { redeem(&app, &token, "ONCE-EACH", &campaign).await });
    }
    let replies = requests.join_all().await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT)
    );
}
