//! The campaign scheduler with a controlled clock: dayparting across midnight in a non-UTC
//! zone, budgets that reset at the brand's local midnight and month start, a DST change,
//! escrow funding, end dates, rows no API would write, and one active scheduler across
//! processes.

use std::time::Duration;

use adescrow::adserver::scheduler::Scheduler;
use adescrow::platform::db::MIGRATOR;
use adescrow::platform::leader::Leader;
use adescrow::platform::worker::Supervisor;
use serde_json::json;
use sqlx::PgPool;
use time::macros::datetime;

use crate::fixtures::*;
use crate::support::*;

const CPM: &str = "1000000";

#[sqlx::test(migrator = "MIGRATOR")]
async fn dayparting_past_midnight_follows_the_brand_zone(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "Asia/Tokyo", 1_000_000_000, 10_000_000_000).await;
    let (campaign, _) = advertiser
        .campaign(
            &app,
            json!({ "daypart": { "startHour": 22, "endHour": 6 } }),
            json!({ "cpm": CPM }),
        )
        .await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();

    // 12:00 UTC is 21:00 in Tokyo: not yet.
    assert_eq!(tick(&pool, id, "2026-03-10T12:00:00Z").await, "SCHEDULED");
    // 13:00 UTC is 22:00: the window opens.
    assert_eq!(tick(&pool, id, "2026-03-10T13:00:00Z").await, "RUNNING");
    // 15:30 UTC is 00:30 the next local day: still inside.
    assert_eq!(tick(&pool, id, "2026-03-10T15:30:00Z").await, "RUNNING");
    // 21:00 UTC is 06:00: the window closed.
    assert_eq!(tick(&pool, id, "2026-03-10T21:00:00Z").await, "SCHEDULED");

    let history = app
        .get(&format!("/v1/campaigns/{id}/history"), Some(&advertiser.token))
        .await;
    let causes: Vec<_> = history
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["to"].clone(), c["cause"].clone()))
        .collect();
    assert_eq!(
        causes,
        [
            (json!("DRAFT"), json!("user")),
            (json!("SCHEDULED"), json!("user")),
            (json!("RUNNING"), json!("scheduler")),
            (json!("SCHEDULED"), json!("scheduler")),
        ]
    );
    assert_eq!(
        history.body[2]["changedAt"], "2026-03-10T13:00:00Z",
        "the change is stamped with the scheduler's clock"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn daily_budget_stops_the_campaign_until_local_midnight(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    // New York: local midnight is 05:00 UTC in winter.
    let advertiser = Advertiser::new(&app, "America/New_York", 5_000, 1_000_000).await;
    let (campaign, ad) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();
    assert_eq!(tick(&pool, id, "2026-01-15T15:00:00Z").await, "RUNNING");

    bill(&pool, id, &ad, 3_000, datetime!(2026-01-15 15:01 UTC)).await;
    assert_eq!(
        tick(&pool, id, "2026-01-15T15:02:00Z").await,
        "RUNNING",
        "under the daily budget"
    );
    bill(&pool, id, &ad, 2_000, datetime!(2026-01-15 15:03 UTC)).await;
    assert_eq!(tick(&pool, id, "2026-01-15T15:04:00Z").await, "BUDGET_REACHED");
    // 04:59 UTC is still the 15th in New York.
    assert_eq!(tick(&pool, id, "2026-01-16T04:59:00Z").await, "BUDGET_REACHED");
    // Local midnight: the day's spend starts again; the campaign returns and starts.
    assert_eq!(tick(&pool, id, "2026-01-16T05:00:00Z").await, "RUNNING");

    let history = app
        .get(&format!("/v1/campaigns/{id}/history"), Some(&advertiser.token))
        .await;
    let steps: Vec<_> = history
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["to"].clone(), c["cause"].clone(), c["reason"].clone()))
        .collect();
    assert_eq!(
        steps[3],
        (
            json!("BUDGET_REACHED"),
            json!("budget"),
            json!("brand daily budget reached")
        )
    );
    assert_eq!(
        steps[4],
        (json!("SCHEDULED"), json!("budget"), json!("budget available again"))
    );
    assert_eq!(steps[5].0, json!("RUNNING"));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn monthly_budget_resets_at_the_local_month_start(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "Europe/Berlin", 10_000, 10_000).await;
    let (campaign, ad) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();

    assert_eq!(tick(&pool, id, "2026-01-20T12:00:00Z").await, "RUNNING");
    bill(&pool, id, &ad, 6_000, datetime!(2026-01-20 12:00 UTC)).await;
    bill(&pool, id, &ad, 4_000, datetime!(2026-01-25 12:00 UTC)).await;
    // Each day is under the daily budget, but the month is spent.
    assert_eq!(tick(&pool, id, "2026-01-26T12:00:00Z").await, "BUDGET_REACHED");
    // 22:59 UTC on the 31st is 23:59 in Berlin: still January.
    assert_eq!(tick(&pool, id, "2026-01-31T22:59:00Z").await, "BUDGET_REACHED");
    // 23:00 UTC is midnight on 1 February in Berlin.
    assert_eq!(tick(&pool, id, "2026-01-31T23:00:00Z").await, "RUNNING");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn dst_change_moves_the_window_in_utc(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "Europe/Berlin", 1_000_000_000, 10_000_000_000).await;
    let (campaign, _) = advertiser
        .campaign(
            &app,
            json!({ "daypart": { "startHour": 9, "endHour": 17 } }),
            json!({ "cpm": CPM }),
        )
        .await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();

    // Saturday 28 March 2026, winter time (+01:00): 08:00 UTC is 09:00 local.
    assert_eq!(tick(&pool, id, "2026-03-28T07:59:00Z").await, "SCHEDULED");
    assert_eq!(tick(&pool, id, "2026-03-28T08:00:00Z").await, "RUNNING");
    assert_eq!(tick(&pool, id, "2026-03-28T16:00:00Z").await, "SCHEDULED");
    // Sunday 29 March, summer time (+02:00) since 01:00 UTC: 07:00 UTC is 09:00 local,
    // and 15:00 UTC is 17:00.
    assert_eq!(tick(&pool, id, "2026-03-29T06:59:00Z").await, "SCHEDULED");
    assert_eq!(tick(&pool, id, "2026-03-29T07:00:00Z").await, "RUNNING");
    assert_eq!(tick(&pool, id, "2026-03-29T14:59:00Z").await, "RUNNING");
    assert_eq!(tick(&pool, id, "2026-03-29T15:00:00Z").await, "SCHEDULED");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn unfunded_or_exhausted_escrow_does_not_run(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    let id = campaign["id"].as_str().unwrap();
    assert_eq!(
        tick(&pool, id, "2026-06-01T12:00:00Z").await,
        "SCHEDULED",
        "no escrow on chain"
    );

    // An escrow under this id opened by someone else's wallet does not count.
    let chain_id = campaign["chainCampaignId"].as_str().unwrap().parse().unwrap();
    fund_escrow(&pool, chain_id, alloy::primitives::Address::repeat_byte(9), 1_000_000).await;
    assert_eq!(
        tick(&pool, id, "2026-06-01T12:01:00Z").await,
        "SCHEDULED",
        "escrow of another wallet"
    );

    let other = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (funded, funded_ad) = other.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    other.fund(&pool, &funded, 5_000).await;
    let funded_id = funded["id"].as_str().unwrap();
    assert_eq!(tick(&pool, funded_id, "2026-06-01T12:02:00Z").await, "RUNNING");
    // Billed spend eats the whole escrow before any settlement: nothing left to pay with.
    bill(&pool, funded_id, &funded_ad, 5_000, datetime!(2026-06-01 12:03 UTC)).await;
    assert_eq!(tick(&pool, funded_id, "2026-06-01T12:04:00Z").await, "BUDGET_REACHED");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn campaigns_complete_at_their_end_date_and_paused_ones_stay_paused(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();
    assert_eq!(tick(&pool, id, "2026-06-01T12:00:00Z").await, "RUNNING");
    app.post(
        &format!("/v1/campaigns/{id}/status"),
        Some(&advertiser.token),
        json!({ "status": "PAUSED" }),
    )
    .await
    .ok();
    assert_eq!(tick(&pool, id, "2026-06-01T12:01:00Z").await, "PAUSED");
    assert_eq!(tick(&pool, id, "2030-01-01T00:00:00Z").await, "COMPLETED");
    // Nothing moves a completed campaign.
    assert_eq!(tick(&pool, id, "2030-01-02T00:00:00Z").await, "COMPLETED");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn only_one_scheduler_holds_the_lock(pool: PgPool) {
    let key = 42;
    let first = Leader::try_acquire(&pool, key).await.unwrap().expect("free lock");
    assert!(
        Leader::try_acquire(&pool, key).await.unwrap().is_none(),
        "second instance waits"
    );
    first.release().await;
    let mut again = Leader::try_acquire(&pool, key).await.unwrap().expect("released lock");
    assert!(again.still_held().await);
}

/// Sets a campaign's end straight in the database, as no API would.
async fn set_end(pool: &PgPool, campaign: &str, end: &str) {
    sqlx::query("UPDATE campaigns SET ends_at = $2::timestamptz WHERE id = $1")
        .bind(campaign.parse::<uuid::Uuid>().unwrap())
        .bind(end)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn campaigns_ending_past_the_clocks_range_do_not_stop_the_others(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    // Past jiff's range, past the `time` crate's, and Postgres' own infinity: drafts, as
    // the advertiser in the report left theirs.
    for end in ["9999-12-31T23:59:59Z", "20000-01-01T00:00:00Z", "infinity"] {
        let draft = app
            .post(
                "/v1/campaigns",
                Some(&advertiser.token),
                json!({ "brandId": advertiser.brand, "name": "Forever", "token": TOKEN,
                        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" }),
            )
            .await;
        set_end(&pool, draft.ok()["id"].as_str().unwrap(), end).await;
    }
    // One that is scheduled and funded, and ends "never": it runs like any other.
    let (endless, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    advertiser.fund(&pool, &endless, 1_000_000_000).await;
    let endless = endless["id"].as_str().unwrap();
    set_end(&pool, endless, "infinity").await;
    let (campaign, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();

    assert_eq!(tick(&pool, id, "2026-06-01T12:00:00Z").await, "RUNNING");
    assert_eq!(status(&pool, endless).await, "RUNNING");
    assert_eq!(tick(&pool, id, "2030-01-01T00:00:00Z").await, "COMPLETED");
    assert_eq!(status(&pool, endless).await, "RUNNING", "it has not ended");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_supervised_scheduler_starts_campaigns_past_a_bad_row(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (bad, _) = advertiser.campaign(&app, json!({}), json!({ "cpm": CPM })).await;
    set_end(&pool, bad["id"].as_str().unwrap(), "9999-12-31T23:59:59Z").await;
    let (campaign, _) = advertiser
        .campaign(
            &app,
            json!({ "startsAt": "2026-01-01T00:00:00Z" }),
            json!({ "cpm": CPM }),
        )
        .await;
    advertiser.fund(&pool, &campaign, 1_000_000_000).await;
    let id = campaign["id"].as_str().unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut supervisor = Supervisor::new(app.state.roles.clone(), Duration::from_secs(60), async {
        let _ = stopped.await;
    });
    supervisor.spawn(Scheduler {
        db: pool.clone(),
        chain_id: CHAIN_ID,
        interval: Duration::from_millis(100),
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status(&pool, id).await != "RUNNING" {
        assert!(tokio::time::Instant::now() < deadline, "the scheduler never started it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.state.roles.problems(), [], "the scheduler is up");
    stop.send(()).unwrap();
    supervisor.wait().await;
}
