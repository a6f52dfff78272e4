//! Reseller pricing on billed spend: the platform keeps the fee of the tier the reseller's
//! month has reached, and the rest of its share moves to the reseller, once per batch.

use adescrow::programs::resellers::{clawback, pricing};

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_resellers_markup_is_the_platforms_share_above_its_tier(pool: PgPool) {
    // 2,000 an impression: 1,800 to the hoster, 180 to the platform, 20 to the witness.
    let (world, admin) = World::priced_with_admin(pool.clone()).await;
    let app = &world.app;
    let when = |days: i64| {
        (OffsetDateTime::now_utc() + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let agency = PrivateKeySigner::random();
    let agency_token = app.token(&agency).await;
    let reseller = app
        .post(
            "/v1/resellers/me",
            Some(&agency_token),
            json!({ "name": "North Agency", "application": "We resell" }),
        )
        .await
        .ok()
        .clone();
    let id = reseller["id"].as_str().unwrap();
    let contract = app
        .post(
            "/v1/resellers/me/contracts",
            Some(&agency_token),
            json!({ "startsAt": when(-1), "endsAt": when(30), "terms": "Tiers" }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/resellers/me/contracts/{contract}/status"),
        Some(&agency_token),
        json!({ "status": "pending_approval", "reason": "signed" }),
    )
    .await
    .ok();
    for status in ["approved", "active"] {
        app.post(
            &format!("/v1/admin/reseller-contracts/{contract}/status"),
            Some(&admin),
            json!({ "status": status, "reason": "agreed" }),
        )
        .await
        .ok();
    }
    let today = OffsetDateTime::now_utc().date();
    let tiers =
        |from: time::Date, tiers: Value| json!({ "token": TOKEN, "effectiveFrom": from.to_string(), "tiers": tiers });
    let path = format!("/v1/admin/resellers/{id}/tiers");
    let put = |body: Value| app.call(axum::http::Method::PUT, &path, Some(&admin), Some(body));
    let past = put(tiers(
        today.previous_day().unwrap(),
        json!([{ "minVolume": "0", "feeBps": 600 }]),
    ))
    .await;
    assert_eq!(
        past.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "effectiveFrom"
    );
    let gap = put(tiers(today, json!([{ "minVolume": "5", "feeBps": 600 }]))).await;
    assert_eq!(
        gap.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "tiers"
    );
    // 6% of the price below 5,000 billed this month, 3% from there.
    let set = put(tiers(
        today,
        json!([{ "minVolume": "0", "feeBps": 600 }, { "minVolume": "5000", "feeBps": 300 }]),
    ))
    .await;
    assert_eq!(set.ok()[0]["tiers"].as_array().unwrap().len(), 2);
    app.post(
        "/v1/resellers/join",
        Some(&world.advertiser.token),
        json!({ "code": reseller["code"] }),
    )
    .await
    .ok();

    // Three batches of two impressions: 4,000 spend and 360 platform share each. The first
    // two find the month below 5,000 (fee 240, markup 120), the third above (fee 120,
    // markup 240).
    let mut batches = Vec::new();
    for sequence in 1..=3 {
        let tickets = world.tickets(2, None).await;
        let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", now(), None)).collect();
        let answer = world.submit(sequence, &receipts, true).await;
        assert_eq!(answer.ok()["billed"], 2);
        batches.push(answer.body["batchId"].clone());
    }
    let accrued = pricing::accrue(&pool, CHAIN_ID, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(accrued, 3);
    assert_eq!(
        pricing::accrue(&pool, CHAIN_ID, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        0,
        "once per batch"
    );
    assert_eq!(world.earned(agency.address()).await, 120 + 120 + 240);
    assert_eq!(world.earned(PLATFORM).await, 3 * 360 - 480);
    assert_eq!(
        world.earned(world.hoster.owner.address()).await,
        6 * 1800,
        "the hoster's share is whole"
    );
    assert_ledger_consistent(&pool).await;
    let dashboard = app.get("/v1/resellers/me", Some(&agency_token)).await;
    let fees: Vec<u64> = dashboard.ok()["markups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["feeBps"].as_u64().unwrap())
        .collect();
    assert_eq!(fees, [300, 600, 600], "newest first");
    let statement = app.get("/v1/statements/me", Some(&agency_token)).await;
    assert!(
        statement.ok().to_string().contains("reseller_markups"),
        "{}",
        statement.text
    );

    // One impression of the third batch is found fraudulent: its 180 of platform share goes
    // back to the advertiser, and half the batch's markup (240 x 180 / 360) to the platform.
    app.post(
        "/v1/admin/adjustments",
        Some(&admin),
        json!({ "batchId": batches[2], "positions": [0], "reason": "click farm" }),
    )
    .await
    .ok();
    let now = OffsetDateTime::now_utc();
    assert_eq!(clawback::claw_back(&pool, CHAIN_ID, now).await.unwrap(), 1);
    assert_eq!(clawback::claw_back(&pool, CHAIN_ID, now).await.unwrap(), 0, "once");
    assert_eq!(world.earned(agency.address()).await, 480 - 120);
    assert_eq!(world.earned(PLATFORM).await, 3 * 360 - 480 - 180 + 120);
}
