//! Affiliate commissions from real billed batches: accrued out of the platform's share at
//! the rate in force, held until the spend is settled and the minimum payout is reached,
//! clawed back pro rata when an adjustment reverses receipts, before and after release.

use super::*;
use crate::growth::affiliate_code;

/// Payee balances in the test token: (released, held).
async fn balance(pool: &PgPool, payee: Address) -> (u128, u128) {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT released::text, held::text FROM payee_balances WHERE payee = $1 AND token = $2")
            .bind(payee.as_slice())
            .bind(TOKEN.as_slice())
            .fetch_optional(pool)
            .await
            .unwrap();
    row.map_or((0, 0), |(r, h)| (r.parse().unwrap(), h.parse().unwrap()))
}

/// Closes and builds an epoch over every posting so far (the relayer's own steps), and
/// records it settled and past its window, as the chain mirror would once it is.
async fn settled_epoch(pool: &PgPool, epoch: i64) {
    use adescrow::settlement::relayer::epoch;
    let policy = adescrow::settlement::relayer::EpochPolicy {
        interval: Duration::ZERO,
        owed_threshold: u128::MAX,
    };
    let closed = epoch::close_if_due(pool, CHAIN_ID, &policy, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(closed, Some(epoch as u64));
    epoch::build_pending(pool, CHAIN_ID).await.unwrap();
    sqlx::query(
        "UPDATE settlement_epochs SET settled_tx = '\\x01', confirmed_at = now(), activated_at = now()
         WHERE chain_id = $1 AND epoch = $2",
    )
    .bind(CHAIN_ID as i64)
    .bind(epoch)
    .execute(pool)
    .await
    .unwrap();
}

async fn commissions_job(app: &TestApp) -> (usize, usize, usize) {
    use adescrow::programs::affiliates::commissions;
    let (db, growth, now) = (&app.pool, &app.state.growth, OffsetDateTime::now_utc());
    let accrued = commissions::accrue(db, CHAIN_ID, &growth.affiliates, now)
        .await
        .unwrap();
    let clawed = commissions::claw_back(db, CHAIN_ID, now).await.unwrap();
    let released = commissions::release_due(db, CHAIN_ID, &growth.affiliates, now)
        .await
        .unwrap();
    (accrued, clawed, released)
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn commissions_accrue_wait_for_settlement_and_are_clawed_back_pro_rata(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let admin_address = admin.address();
    let app = TestApp::with(pool.clone(), |config| {
        config.admin_addresses = vec![admin_address];
        config.growth.affiliate_hold = Duration::ZERO;
        config.growth.affiliate_min_payout = vec![(TOKEN, adescrow::money::Amount(40))];
    });
    let world = World::with(app, json!({}), json!({ "cpm": "1000000" }), 1_000_000, 1_000_000_000).await;
    let app = &world.app;
    let admin_token = app.token(&admin).await;
    let partner = PrivateKeySigner::random();
    let (code, partner_token) = affiliate_code(app, &admin_token, &partner).await;
    // The advertiser names the code with its next campaign: its spend from now on counts.
    let mut body = json!({
        "brandId": world.advertiser.brand, "name": "Next", "token": TOKEN,
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z", "affiliateCode": code,
    });
    let created = app
        .post("/v1/campaigns", Some(&world.advertiser.token), body.take())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // Three witnessed impressions of 1,000: the platform's 9% is 270, the commission 20%.
    let tickets = world.tickets(3, None).await;
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", now(), None)).collect();
    let answer = world.submit(1, &receipts, true).await;
    assert_eq!(outcomes(answer.ok()), ["billed", "billed", "billed"]);
    let batch = answer.body["batchId"].as_i64().unwrap();
    let (platform_before, _) = balance(&app.pool, PLATFORM).await;
    assert_eq!(
        commissions_job(app).await,
        (1, 0, 0),
        "accrued, and held: the spend is not settled"
    );
    assert_eq!(commissions_job(app).await, (0, 0, 0), "accrual never repeats");
    assert_eq!(balance(&app.pool, partner.address()).await, (0, 54));
    assert_eq!(balance(&app.pool, PLATFORM).await.0, platform_before - 54);

    // Bad adjustments change nothing.
    let adjust = |batch: i64, positions: Value| {
        app.post(
            "/v1/admin/adjustments",
            Some(&admin_token),
            json!({ "batchId": batch, "positions": positions, "reason": "click farm" }),
        )
    };
    adjust(batch + 100, json!([0]))
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    let unknown = adjust(batch, json!([7])).await;
    assert_eq!(
        unknown.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "positions"
    );

    // Receipt 0 reversed while held: the held commission shrinks to 54 - floor(54 * 90 / 270).
    let first = adjust(batch, json!([0])).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["reversed"][0]["amount"], "1000");
    let twice = adjust(batch, json!([0])).await;
    assert_eq!(twice.problem(StatusCode::CONFLICT, "conflict")["field"], "positions");
    assert_eq!(commissions_job(app).await, (0, 1, 0));
    assert_eq!(balance(&app.pool, partner.address()).await, (0, 36));
    let advertiser = world.advertiser.wallet.address();
    assert_eq!(
        balance(&app.pool, advertiser).await,
        (1_000, 0),
        "the advertiser has its price back"
    );

    // Settled, but 36 is below the minimum payout of 40; the next batch's 18 makes it 54.
    settled_epoch(&app.pool, 1).await;
    assert_eq!(commissions_job(app).await, (0, 0, 0));
    let tickets = world.tickets(1, None).await;
    let answer = world
        .submit(2, &[receipt(&tickets[0], "impression", now(), None)], true)
        .await;
    assert_eq!(outcomes(answer.ok()), ["billed"]);
    assert_eq!(commissions_job(app).await, (1, 0, 0), "its spend is not settled yet");
    settled_epoch(&app.pool, 2).await;
    assert_eq!(commissions_job(app).await, (0, 0, 2));
    assert_eq!(balance(&app.pool, partner.address()).await, (54, 0));

    // Receipt 1 reversed after release: floor(54 * 180 / 270) - 18 more goes back.
    adjust(batch, json!([1])).await.ok();
    assert_eq!(commissions_job(app).await, (0, 1, 0));
    assert_eq!(balance(&app.pool, partner.address()).await, (36, 0));
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&partner_token)).await;
    let commissions = dashboard.ok()["commissions"].as_array().unwrap().clone();
    let shown: Vec<(Value, Value, Value, Value)> = commissions
        .iter()
        .map(|c| {
            (
                c["batchId"].clone(),
                c["amount"].clone(),
                c["clawedBack"].clone(),
                c["state"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                answer.body["batchId"].clone(),
                json!("18"),
                json!("0"),
                json!("released")
            ),
            (json!(batch), json!("18"), json!("36"), json!("released"))
        ],
        "{}",
        dashboard.text
    );
    assert_eq!(commissions[0]["rateBps"], 2000);
    assert_eq!(dashboard.body["advertisers"][0]["spend"][0]["spend"], "4000");
    // Everything reversed takes back exactly the whole.
    adjust(batch, json!([2])).await.ok();
    assert_eq!(commissions_job(app).await, (0, 1, 0));
    assert_eq!(balance(&app.pool, partner.address()).await, (18, 0));
    // The hoster, witness and platform were paid the later receipts by epoch 2's leaves: the
    // advertiser's refunds of them wait until those payees' later earnings repay them.
    assert_eq!(balance(&app.pool, advertiser).await, (1_000, 2_000));
    let (billed, paid): (String, String) = sqlx::query_as(
        "SELECT (SELECT sum(price) FROM billed_events)::text, (SELECT sum(released + held) FROM payee_balances)::text",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(billed, paid, "every billed unit is owed to someone, once");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn spend_billed_while_an_affiliate_is_suspended_earns_it_nothing(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let admin_address = admin.address();
    let app = TestApp::with(pool.clone(), |config| {
        config.admin_addresses = vec![admin_address];
        config.growth.affiliate_hold = Duration::ZERO;
    });
    let world = World::with(app, json!({}), json!({ "cpm": "1000000" }), 1_000_000, 1_000_000_000).await;
    let app = &world.app;
    let admin_token = app.token(&admin).await;
    let partner = PrivateKeySigner::random();
    let (code, partner_token) = affiliate_code(app, &admin_token, &partner).await;
    let id = app.get("/v1/affiliates/me", Some(&partner_token)).await.ok()["userId"].clone();
    let status_path = format!("/v1/admin/affiliates/{}/status", id.as_str().unwrap());
    let created = app
        .post(
            "/v1/campaigns",
            Some(&world.advertiser.token),
            json!({
                "brandId": world.advertiser.brand, "name": "Next", "token": TOKEN,
                "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z", "affiliateCode": code,
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // Suspended while a batch is billed: its spend earns the affiliate nothing, for good,
    // even when accrual only runs after the affiliate is reinstated.
    let suspended = app
        .post(
            &status_path,
            Some(&admin_token),
            json!({ "status": "suspended", "reason": "paused" }),
        )
        .await;
    assert_eq!(suspended.ok()["status"], "suspended");
    let tickets = world.tickets(3, None).await;
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", now(), None)).collect();
    let answer = world.submit(1, &receipts, true).await;
    assert_eq!(outcomes(answer.ok()), ["billed", "billed", "billed"]);
    let (platform_before, _) = balance(&app.pool, PLATFORM).await;
    let reinstated = app
        .post(
            &status_path,
            Some(&admin_token),
            json!({ "status": "active", "reason": "back" }),
        )
        .await;
    assert_eq!(reinstated.ok()["status"], "active");
    assert_eq!(
        commissions_job(app).await,
        (0, 0, 0),
        "no commission on spend billed while suspended"
    );
    assert_eq!(balance(&app.pool, partner.address()).await, (0, 0));
    assert_eq!(
        balance(&app.pool, PLATFORM).await.0,
        platform_before,
        "the platform keeps its share"
    );

    // Billed after the reinstatement: 20% of the batch's 90 of platform share.
    let tickets = world.tickets(1, None).await;
    let later = world
        .submit(2, &[receipt(&tickets[0], "impression", now(), None)], true)
        .await;
    assert_eq!(outcomes(later.ok()), ["billed"]);
    assert_eq!(commissions_job(app).await, (1, 0, 0));
    assert_eq!(balance(&app.pool, partner.address()).await, (0, 18));
    let token = app.token(&partner).await;
    let dashboard = app.get("/v1/affiliates/me/dashboard", Some(&token)).await;
    let batches: Vec<Value> = dashboard.ok()["commissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["batchId"].clone())
        .collect();
    assert_eq!(batches, [later.body["batchId"].clone()], "{}", dashboard.text);
}
