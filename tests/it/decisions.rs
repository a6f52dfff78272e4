//! Decisions: node sessions with real signatures, selection by each rule (schedule,
//! targeting, consent, frequency caps, budget, priority), tickets, and the index refreshing
//! itself when Postgres reports a change.

use std::time::Duration;

use adescrow::platform::db::MIGRATOR;
use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fixtures::*;
use crate::support::*;

fn ad_ids(decision: &Value) -> Vec<String> {
    decision["ads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["adId"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn node_sessions_need_the_registered_key_and_a_fresh_time(pool: PgPool) {
    let app = TestApp::new(pool);
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let now = OffsetDateTime::now_utc();

    let stale = app
        .post(
            "/v1/nodes/sessions",
            None,
            session_body(&node.key, now - Duration::from_secs(300)),
        )
        .await;
    assert_eq!(
        stale.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "issuedAt"
    );

    let mut forged = session_body(&node.key, now);
    forged["signature"] = session_body(&PrivateKeySigner::random(), now)["signature"].clone();
    let forged = app.post("/v1/nodes/sessions", None, forged).await;
    assert_eq!(
        forged.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "signature"
    );

    let unknown = app
        .post(
            "/v1/nodes/sessions",
            None,
            session_body(&PrivateKeySigner::random(), now),
        )
        .await;
    assert_eq!(
        unknown.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "address"
    );

    let token = node_token(&app, &node).await;
    let empty = decide(&app, &token, json!({ "placement": "sidebar" })).await;
    assert_eq!(empty["reason"], "no_running_campaigns");

    // A user session is not a node session, nor the other way round.
    app.post(
        "/v1/decisions",
        Some(&node.owner_token),
        json!({ "placement": "sidebar" }),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.get("/v1/me", Some(&token))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Retiring the node revokes its sessions as soon as the index sees it.
    app.call(
        axum::http::Method::DELETE,
        &format!("/v1/nodes/{}", node.id),
        Some(&node.owner_token),
        None,
    )
    .await
    .ok();
    app.state.ad_server.refresh().await.unwrap();
    app.post("/v1/decisions", Some(&token), json!({ "placement": "sidebar" }))
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.post(
        "/v1/nodes/sessions",
        None,
        session_body(&node.key, OffsetDateTime::now_utc()),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn decisions_return_signed_tickets_with_effective_prices(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    // The token's default CPC applies where the ad sets no click price of its own.
    let admin = PrivateKeySigner::random();
    let admin_token = app.token(&admin).await;
    sqlx::query("INSERT INTO user_roles (user_id, role) SELECT id, 'admin' FROM users WHERE address = $1")
        .bind(admin.address().as_slice())
        .execute(&pool)
        .await
        .unwrap();
    app.call(
        axum::http::Method::PUT,
        &format!("/v1/pricing/{TOKEN}"),
        Some(&admin_token),
        Some(json!({ "cpm": "1000000", "cpc": "40000" })),
    )
    .await
    .ok();
    let (campaign, ad) = running(&app, &advertiser, json!({}), json!({ "cpm": "3000000" })).await;
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;

    let decision = decide(
        &app,
        &token,
        json!({ "placement": "feed-top-banner", "viewer": "anon-1" }),
    )
    .await;
    let served = &decision["ads"][0];
    assert_eq!(served["adId"], ad.as_str());
    assert_eq!(served["campaignId"], campaign.as_str());
    assert_eq!(served["hosterNodeId"], node.id.as_str());
    assert_eq!(served["prices"], json!({ "impression": "3000", "click": "40000" }));
    assert_eq!(served["creative"]["title"], "Coffee");
    assert!(decision["reason"].is_null());

    // The ticket verifies with the server key and carries what the response says.
    let ticket = app
        .state
        .ad_server
        .tickets()
        .verify(served["ticket"].as_str().unwrap())
        .unwrap();
    assert_eq!(ticket.id.to_string(), served["ticketId"].as_str().unwrap());
    assert_eq!(ticket.hoster_node_id.to_string(), node.id);
    assert_eq!(
        ticket.viewer,
        Some(adescrow::adserver::serving::ticket::viewer_hash("anon-1"))
    );
    let expires = OffsetDateTime::parse(served["expiresAt"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(expires > OffsetDateTime::now_utc() + Duration::from_secs(3500));

    // An unknown placement names the field and serves nothing.
    let unknown = app
        .post("/v1/decisions", Some(&token), json!({ "placement": "billboard" }))
        .await;
    assert_eq!(
        unknown.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "placement"
    );

    // Served counts reach the table when flushed, apart from billed events.
    app.state.ad_server.flush_served().await.unwrap();
    let analytics = app
        .get(&format!("/v1/campaigns/{campaign}/analytics"), Some(&advertiser.token))
        .await;
    assert_eq!(analytics.ok()["totals"]["served"], 1);
    assert_eq!(analytics.body["totals"]["impressions"], 0);
    assert_eq!(analytics.body["nodes"][0]["nodeId"], node.id.as_str());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn targeting_rules_each_filter(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let targeting = json!({ "targeting": { "regions": ["EU-West"], "communities": ["cycling", "coffee"], "userTypes": ["member"] } });
    let (_, ad) = running(&app, &advertiser, targeting, json!({ "cpm": "1000000" })).await;
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;

    let matching =
        json!({ "placement": "sidebar", "region": "eu-west", "communities": ["Coffee"], "userType": "member" });
    assert_eq!(
        ad_ids(&decide(&app, &token, matching.clone()).await),
        [ad.as_str()],
        "labels compare case-insensitively"
    );
    for (member, value) in [
        ("region", json!("us-east")),
        ("communities", json!(["chess"])),
        ("userType", json!("guest")),
    ] {
        let mut request = matching.clone();
        request[member] = value;
        let decision = decide(&app, &token, request).await;
        assert_eq!(decision["reason"], "no_targeting_match", "{member}");
    }
    let mut no_region = matching.clone();
    no_region.as_object_mut().unwrap().remove("region");
    assert_eq!(decide(&app, &token, no_region).await["reason"], "no_targeting_match");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn consent_is_required_where_the_campaign_asks(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let scope = B256::repeat_byte(0xc0);
    let (_, ad) = running(
        &app,
        &advertiser,
        json!({ "targeting": { "consentScope": scope } }),
        json!({ "cpm": "1000000" }),
    )
    .await;
    let node = hoster_node(&app, false).await;

    let viewer = PrivateKeySigner::random();
    let viewer_token = app.token(&viewer).await;
    let viewer_id = app.post("/v1/me/viewer-id", Some(&viewer_token), json!({})).await.ok()["viewerId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(viewer_id.starts_with("vw_"));
    let again = app.post("/v1/me/viewer-id", Some(&viewer_token), json!({})).await;
    assert_eq!(again.ok()["viewerId"], viewer_id.as_str(), "stable");

    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;
    let request = json!({ "placement": "sidebar", "viewer": viewer_id });
    assert_eq!(decide(&app, &token, request.clone()).await["reason"], "consent_missing");
    assert_eq!(
        decide(&app, &token, json!({ "placement": "sidebar" })).await["reason"],
        "consent_missing"
    );

    // The indexer mirrors the viewer's on-chain grant.
    let grant = |block: i64, expiry: Option<i64>| {
        sqlx::query(
            "INSERT INTO mirror_consent_events (chain_id, block_number, log_index, tx_hash, user_address, scope, expiry)
             VALUES ($1, $2, 0, $3, $4, $5, $6)",
        )
        .bind(CHAIN_ID as i64)
        .bind(block)
        .bind(B256::repeat_byte(2).as_slice())
        .bind(viewer.address().as_slice().to_vec())
        .bind(scope.as_slice().to_vec())
        .bind(expiry)
    };
    grant(10, Some(OffsetDateTime::now_utc().unix_timestamp() + 3600))
        .execute(&pool)
        .await
        .unwrap();
    app.state.ad_server.refresh().await.unwrap();
    assert_eq!(ad_ids(&decide(&app, &token, request.clone()).await), [ad]);

    // A later revocation takes it away again.
    grant(11, None).execute(&pool).await.unwrap();
    app.state.ad_server.refresh().await.unwrap();
    assert_eq!(decide(&app, &token, request).await["reason"], "consent_missing");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn frequency_caps_limit_each_viewer(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (_, ad) = running(
        &app,
        &advertiser,
        json!({ "frequencyCaps": { "impressionsPerHour": 2, "clicksPerHour": 1 } }),
        json!({ "cpm": "1000000" }),
    )
    .await;
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;

    let alice = json!({ "placement": "sidebar", "viewer": "alice" });
    assert_eq!(ad_ids(&decide(&app, &token, alice.clone()).await), [ad.as_str()]);
    assert_eq!(ad_ids(&decide(&app, &token, alice.clone()).await), [ad.as_str()]);
    assert_eq!(decide(&app, &token, alice.clone()).await["reason"], "frequency_capped");
    assert_eq!(
        ad_ids(&decide(&app, &token, json!({ "placement": "sidebar", "viewer": "bob" })).await),
        [ad.as_str()]
    );

    // A billed click counts against the click cap.
    let ad_id = ad.parse().unwrap();
    app.state
        .ad_server
        .frequency()
        .record_click("bob", ad_id, OffsetDateTime::now_utc().unix_timestamp());
    assert_eq!(
        decide(&app, &token, json!({ "placement": "sidebar", "viewer": "bob" })).await["reason"],
        "frequency_capped"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn budget_and_priority_decide_who_wins(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    // Cheap but high priority; expensive but low priority; and one whose escrow cannot pay
    // its acquisition price.
    let (_, cheap) = running(&app, &advertiser, json!({ "priority": 10 }), json!({ "cpm": "1000" })).await;
    let (_, rich) = running(&app, &advertiser, json!({ "priority": 1 }), json!({ "cpm": "9000000" })).await;
    let (poor_campaign, _) = advertiser
        .campaign(&app, json!({ "priority": 50 }), json!({ "cpa": "2000000000" }))
        .await;
    advertiser.fund(&pool, &poor_campaign, 1_000_000_000).await;
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    tick(&pool, poor_campaign["id"].as_str().unwrap(), &now).await;
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;

    // The sidebar shows three: the poor campaign is skipped, priority beats revenue.
    let decision = decide(&app, &token, json!({ "placement": "sidebar" })).await;
    assert_eq!(ad_ids(&decision), [cheap.as_str(), rich.as_str()]);
    // The banner shows one: the best.
    assert_eq!(
        ad_ids(&decide(&app, &token, json!({ "placement": "feed-top-banner" })).await),
        [cheap]
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn equal_ads_share_traffic(pool: PgPool) {
    let app = TestApp::new(pool);
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let (_, first) = running(&app, &advertiser, json!({}), json!({ "cpm": "1000000" })).await;
    let (_, second) = running(&app, &advertiser, json!({}), json!({ "cpm": "1000000" })).await;
    let node = hoster_node(&app, false).await;
    app.state.ad_server.refresh().await.unwrap();
    let token = node_token(&app, &node).await;
    let mut wins = [0; 2];
    for _ in 0..200 {
        let winner = &ad_ids(&decide(&app, &token, json!({ "placement": "feed-top-banner" })).await)[0];
        wins[usize::from(*winner == second)] += 1;
        assert!(*winner == first || *winner == second);
    }
    assert!(wins[0] > 50 && wins[1] > 50, "ties are broken at random: {wins:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_index_refreshes_itself_on_change(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let refresher = app.state.ad_server.spawn(Duration::from_secs(3600), async {
        let _ = stopped.await;
    });
    let advertiser = Advertiser::new(&app, "UTC", 1_000_000_000, 10_000_000_000).await;
    let node = hoster_node(&app, false).await;
    let (_, ad) = running(&app, &advertiser, json!({}), json!({ "cpm": "1000000" })).await;

    // No explicit refresh: the notification from the status change rebuilds the index.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if app.state.ad_server.is_active_node(node.id.parse().unwrap()) {
            let token = node_token(&app, &node).await;
            if ad_ids(&decide(&app, &token, json!({ "placement": "sidebar" })).await) == [ad.as_str()] {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "index never refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    refresher.await.unwrap();
}
