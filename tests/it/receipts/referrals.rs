//! A referee's billed spend, as the referral program sees it, from real billed batches: it
//! qualifies once its campaigns are billed enough, and stops qualifying from the moment an
//! adjustment reverses part of that spend (and not before).

use adescrow::programs::referrals::activity;
use adescrow::programs::referrals::assess::{Reason, Status};
use uuid::Uuid;

use super::*;
use crate::growth::activity_moves;
use crate::growth::history::{History, network};

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_referral_stops_qualifying_when_an_adjustment_reverses_its_spend(pool: PgPool) {
    let admin = PrivateKeySigner::random();
    let admin_address = admin.address();
    let app = TestApp::with(pool.clone(), |config| config.admin_addresses = vec![admin_address]);
    let world = World::with(app, json!({}), json!({ "cpm": "1000000" }), 1_000_000, 1_000_000_000).await;
    let app = &world.app;
    let admin_token = app.token(&admin).await;

    // The advertiser was referred; the rules ask for 3,000 billed, with no cooldown.
    let history = History::with(pool.clone(), 3, Duration::ZERO, 3_000).await;
    let advertiser: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE address = $1")
        .bind(world.advertiser.wallet.address().as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
    history
        .refer(
            advertiser,
            OffsetDateTime::now_utc() - time::Duration::hours(1),
            Some(network(7)),
        )
        .await;

    // Three witnessed impressions of 1,000 billed: 3,000, enough once folded.
    let tickets = world.tickets(3, None).await;
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", now(), None)).collect();
    let answer = world.submit(1, &receipts, true).await;
    assert_eq!(outcomes(answer.ok()), ["billed", "billed", "billed"]);
    let batch = answer.body["batchId"].as_i64().unwrap();
    let pending = [(Status::Pending, Some(Reason::NoQualifyingActivity))];
    assert_eq!(
        history.statuses(OffsetDateTime::now_utc()).await,
        pending,
        "billing counts once it is folded"
    );
    assert_eq!(activity::fold(&pool).await.unwrap(), 1);
    let billed = OffsetDateTime::now_utc();
    assert_eq!(history.statuses(billed).await, [(Status::Qualified, None)]);

    // One receipt reversed: 2,000 billed is below the rule from the adjustment on.
    let adjusted = app
        .post(
            "/v1/admin/adjustments",
            Some(&admin_token),
            json!({ "batchId": batch, "positions": [0], "reason": "click farm" }),
        )
        .await;
    assert_eq!(adjusted.status, StatusCode::CREATED, "{}", adjusted.text);
    assert!(activity::fold(&pool).await.unwrap() >= 1);
    assert_eq!(activity::fold(&pool).await.unwrap(), 0, "each move once");
    assert_eq!(history.statuses(OffsetDateTime::now_utc()).await, pending);
    assert_eq!(
        history.statuses(billed).await,
        [(Status::Qualified, None)],
        "as of before the adjustment, it still qualified"
    );
    assert_eq!(
        activity_moves(&pool, advertiser).await,
        [(3000, 3000, 3000), (-1000, 2000, 3000)],
        "the reversal is a move of its own; the high-water mark stays"
    );
}
