//! Fee waivers in billing: a free trial and a fee discount lower what the advertiser pays
//! by the platform's fee they waive, and every other payee is paid as without them.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_trial_then_a_discount_lower_the_price_and_leave_the_hoster_whole(pool: PgPool) {
    // 2,000 an impression: 1,800 to the hoster, 180 to the platform, 20 to the witness.
    let (world, admin) = World::priced_with_admin(pool.clone()).await;
    let window = |days: i64| {
        (OffsetDateTime::now_utc() + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut codes = Vec::new();
    for (code, offer) in [
        ("TRIAL-2", json!({ "kind": "freeTrial", "impressions": 2 })),
        ("HALF-OFF", json!({ "kind": "feeDiscount", "bps": 5000, "days": 30 })),
    ] {
        let created = world
            .app
            .post(
                "/v1/admin/promotions",
                Some(&admin),
                json!({ "code": code, "name": code, "offer": offer, "startsAt": window(-1),
                        "endsAt": window(30), "publish": true }),
            )
            .await;
        codes.push(created.ok()["id"].as_str().unwrap().to_owned());
        let redeemed = world
            .app
            .post(
                &format!("/v1/promotions/{code}/redemptions"),
                Some(&world.advertiser.token),
                json!({ "campaignId": world.campaign }),
            )
            .await;
        assert_eq!(redeemed.status, StatusCode::CREATED, "{}", redeemed.text);
    }

    // Two impressions under the trial (the platform's whole 180 waived), two more under
    // the discount (half of it, 90).
    let tickets = world.tickets(4, None).await;
    let at = now();
    let receipts: Vec<Value> = tickets
        .iter()
        .map(|ticket| receipt(ticket, "impression", at, None))
        .collect();
    let answer = world.submit(1, &receipts, true).await.ok().clone();
    let prices: Vec<&str> = answer["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["price"].as_str().unwrap())
        .collect();
    assert_eq!(prices, ["1820", "1820", "1910", "1910"]);
    assert_eq!(
        world.earned(world.hoster.owner.address()).await,
        4 * 1800,
        "the hoster's share is whole"
    );
    assert_eq!(world.earned(world.witness.owner.address()).await, 4 * 20);
    assert_eq!(world.earned(PLATFORM).await, 90 + 90);
    assert_ledger_consistent(&world.app.pool).await;

    // A later batch: the trial is used up, the discount still runs.
    let tickets = world.tickets(1, None).await;
    let answer = world
        .submit(2, &[receipt(&tickets[0], "impression", now(), None)], true)
        .await;
    assert_eq!(answer.ok()["receipts"][0]["price"], "1910");

    let mine = world.app.get("/v1/me/promotions", Some(&world.advertiser.token)).await;
    let mine = mine.ok().as_array().unwrap().clone();
    let trial = mine.iter().find(|r| r["code"] == "TRIAL-2").unwrap();
    assert_eq!(
        (trial["trialImpressions"].clone(), trial["trialUsed"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(trial["waived"][0]["amount"], "360");
    let discount = mine.iter().find(|r| r["code"] == "HALF-OFF").unwrap();
    assert_eq!(discount["waived"][0]["amount"], "270");

    let promotion = world
        .app
        .get(&format!("/v1/admin/promotions/{}", codes[1]), Some(&admin))
        .await;
    let funnel = &promotion.ok()["funnel"];
    assert_eq!(
        funnel["spend"][0]["amount"],
        (2 * 1820 + 3 * 1910).to_string(),
        "{funnel}"
    );
    assert_eq!(funnel["waived"][0]["amount"], "270");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_batches_never_waive_more_impressions_than_a_trial_gives(pool: PgPool) {
    // 2,000 an impression: 1,800 to the hoster, 180 to the platform, 20 to the witness.
    let (world, admin) = World::priced_with_admin(pool.clone()).await;
    let window = |days: i64| {
        (OffsetDateTime::now_utc() + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    world
        .app
        .post(
            "/v1/admin/promotions",
            Some(&admin),
            json!({ "code": "TRIAL-5", "name": "Trial", "offer": { "kind": "freeTrial", "impressions": 5 },
                    "startsAt": window(-1), "endsAt": window(30), "publish": true }),
        )
        .await
        .ok();
    world
        .app
        .post(
            "/v1/promotions/trial-5/redemptions",
            Some(&world.advertiser.token),
            json!({ "campaignId": world.campaign }),
        )
        .await
        .ok();
    // Four batches of three impressions at once: five waived in all, whichever come first.
    let mut bodies = Vec::new();
    for sequence in 1..=4 {
        let tickets = world.tickets(3, None).await;
        let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", now(), None)).collect();
        bodies.push(signed(&world.hoster.key, Some(&world.witness.key), sequence, &receipts));
    }
    let answers = world.submit_concurrently(bodies).await;
    let waived = answers
        .iter()
        .flat_map(|a| a.ok()["receipts"].as_array().unwrap().clone())
        .filter(|r| r["price"] == "1820")
        .count();
    assert_eq!(waived, 5);
    let used: i32 = sqlx::query_scalar("SELECT trial_used FROM promo_redemptions")
        .fetch_one(&world.app.pool)
        .await
        .unwrap();
    assert_eq!(used, 5);
    assert_eq!(world.earned(PLATFORM).await, 7 * 180);
    assert_ledger_consistent(&world.app.pool).await;
}
