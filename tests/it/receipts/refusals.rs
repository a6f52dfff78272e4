//! Every refusal has its reason, recorded; bad batches are refused whole and write nothing.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_refusal_has_its_reason(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({ "frequencyCaps": { "impressionsPerHour": 1, "clicksPerHour": 1 } }),
        json!({ "cpm": "1000000", "cpc": "10000" }),
        1_000_000_000,
    )
    .await;
    let other = hoster_node(&world.app, false).await;
    world.app.state.ad_server.refresh().await.unwrap();
    let other_session = node_token(&world.app, &other).await;
    let other_ticket = world.tickets_for(&other_session, 1, None).await.remove(0);
    let tickets = world.tickets(6, None).await;
    // The decision-time cap lets bob have one ticket per process; a second API process
    // (its own in-memory counts) issues him another, which billing must catch.
    let mut viewer_tickets = world.tickets(1, Some("bob")).await;
    let second_process = TestApp::new(pool.clone());
    second_process.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "viewer": "bob", "region": world.region });
    let decision = decide(&second_process, &world.hoster_session, request).await;
    viewer_tickets.push(decision["ads"][0]["ticket"].as_str().unwrap().to_owned());
    // A process issuing one-second tickets, for one that expires.
    let short_lived = TestApp::with(pool.clone(), |config| config.ticket_ttl = Duration::from_secs(1));
    short_lived.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "region": world.region });
    let expiring = decide(&short_lived, &world.hoster_session, request).await["ads"][0]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = tickets[0].clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let at = now();

    let receipts = [
        receipt(&tampered, "impression", at, None),
        receipt("not-a-ticket", "impression", at, None),
        receipt(&other_ticket, "impression", at, None),
        receipt(&expiring, "impression", at + 60, None),
        receipt(&tickets[1], "impression", at + 3600, None),
        receipt(&viewer_tickets[0], "impression", at, Some("mallory")),
        receipt(&tickets[2], "click", at, None),
        receipt(&tickets[3], "view", at, None),
        receipt(&tickets[4], "impression", at, None),
        receipt(&tickets[4], "impression", at, None),
        receipt(&viewer_tickets[0], "impression", at, Some("bob")),
        receipt(&viewer_tickets[1], "impression", at, Some("bob")),
    ];
    let reply = world.submit(1, &receipts, true).await;
    assert_eq!(
        outcomes(reply.ok()),
        [
            "ticket_invalid",
            "ticket_invalid",
            "wrong_hoster",
            "ticket_expired",
            "time_in_future",
            "viewer_mismatch",
            "click_without_impression",
            "not_priced",
            "billed",
            "duplicate",
            "billed",
            "frequency_capped",
        ]
    );
    // Across batches too.
    let again = world
        .submit(2, &[receipt(&tickets[4], "impression", at, None)], true)
        .await;
    assert_eq!(outcomes(again.ok()), ["duplicate"]);
    let refused: i64 = sqlx::query_scalar("SELECT count(*) FROM refused_receipts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(refused, 11, "refusals are recorded, not dropped");
    // A later batch's cap counts what is billed (looked up through the frequency index): a
    // third process issues bob a ticket its own counts allow, and billing refuses it.
    let third_process = TestApp::new(pool.clone());
    third_process.state.ad_server.refresh().await.unwrap();
    let request = json!({ "placement": "feed-top-banner", "viewer": "bob", "region": world.region });
    let decision = decide(&third_process, &world.hoster_session, request).await;
    let third = decision["ads"][0]["ticket"].as_str().unwrap().to_owned();
    let capped = world
        .submit(3, &[receipt(&third, "impression", at, Some("bob"))], true)
        .await;
    assert_eq!(outcomes(capped.ok()), ["frequency_capped"]);
    // The keys billing writes are the ones the migration derives in SQL for older rows.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM billed_events WHERE viewer_hash IS NOT NULL AND frequency_key IS DISTINCT FROM
             ('x' || encode(substr(sha256(uuid_send(ad_id) || viewer_hash), 1, 8), 'hex'))::bit(64)::bigint",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0, "frequency keys agree with their SQL definition");
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn consent_and_budgets_refuse_with_reasons(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    // Escrow for two impressions of 1000; brand daily budget for three.
    let scope = keccak256(b"sports");
    let world = World::with(app, json!({}), json!({ "cpm": "1000000" }), 2_000, 1_000_000_000).await;
    let tickets = world.tickets(3, None).await;
    let at = now();
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", at, None)).collect();
    assert_eq!(
        outcomes(world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed", "campaign_budget_exhausted"]
    );

    let brand_world = World::with(
        TestApp::new(pool.clone()),
        json!({}),
        json!({ "cpm": "1000000" }),
        1_000_000,
        2_500,
    )
    .await;
    let tickets = brand_world.tickets(3, None).await;
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", at, None)).collect();
    assert_eq!(
        outcomes(brand_world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed", "brand_budget_reached"]
    );

    let consent_world = World::new(
        pool.clone(),
        json!({ "targeting": { "consentScope": scope } }),
        json!({ "cpm": "1000000" }),
        1_000_000,
    )
    .await;
    // The decision needs consent too, so the ticket is issued while the viewer holds it.
    let (viewer, viewer_id) = consent_world.signed_in_viewer().await;
    mirror_consent(&pool, viewer.address(), scope, 1, Some(at + 60)).await;
    consent_world.app.state.ad_server.refresh().await.unwrap();
    let ticket = consent_world.tickets(1, Some(&viewer_id)).await.remove(0);
    // At the event's time the consent had expired.
    let late = receipt(&ticket, "impression", at + 120, Some(&viewer_id));
    let reply = consent_world.submit(1, &[late], true).await;
    assert_eq!(outcomes(reply.ok()), ["consent_missing"], "{}", reply.text);
    let in_time = receipt(&ticket, "impression", at + 30, Some(&viewer_id));
    assert_eq!(
        outcomes(consent_world.submit(2, &[in_time], true).await.ok()),
        ["billed"]
    );
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_batches_are_refused_whole_and_write_nothing(pool: PgPool) {
    let app = TestApp::with(pool.clone(), |config| config.max_batch_receipts = 3);
    let world = World::with(
        app,
        json!({}),
        json!({ "cpm": "1000000" }),
        1_000_000_000,
        1_000_000_000,
    )
    .await;
    let tickets = world.tickets(1, None).await;
    let receipts = [receipt(&tickets[0], "impression", now(), None)];
    let same_owner_witness = {
        let key = PrivateKeySigner::random();
        let message =
            adescrow::accounts::nodes::registration_message(world.hoster.owner.address(), key.address(), CHAIN_ID);
        world
            .app
            .post(
                "/v1/nodes",
                Some(&world.hoster.owner_token),
                json!({ "address": key.address(), "name": "twin", "canWitness": true, "signature": personal_sign(&key, &message) }),
            )
            .await
            .ok();
        key
    };
    let not_a_witness = hoster_node(&world.app, false).await;
    world.app.state.ad_server.refresh().await.unwrap();

    let mut forged = signed(&world.hoster.key, Some(&world.witness.key), 1, &receipts);
    forged["hosterSignature"] = signed(&PrivateKeySigner::random(), None, 1, &receipts)["hosterSignature"].clone();
    let mut high_s = signed(&world.hoster.key, None, 1, &receipts);
    high_s["hosterSignature"] = json!("0x1234");
    let mut wrong_chain = signed(&world.hoster.key, None, 1, &receipts);
    wrong_chain["chainId"] = json!(1);
    let mut witness_unsigned = signed(&world.hoster.key, Some(&world.witness.key), 1, &receipts);
    witness_unsigned.as_object_mut().unwrap().remove("witnessSignature");
    let too_many: Vec<Value> = (0..4).map(|_| receipts[0].clone()).collect();
    // Parsed off the runtime, a body of the wrong shape still names its field.
    let mut misshapen = signed(&world.hoster.key, None, 1, &receipts);
    misshapen["receipts"][0]["event"] = json!("teleport");
    let mut unknown_field = signed(&world.hoster.key, None, 1, &receipts);
    unknown_field["receipts"][0]["ip"] = json!("203.0.113.7");
    let cases = [
        (misshapen, "receipts[0].event"),
        (unknown_field, "receipts[0].ip"),
        (forged, "hosterSignature"),
        (high_s, "hosterSignature"),
        (signed_for(1, &world.hoster.key, None, 1, &receipts), "hosterSignature"),
        (wrong_chain, "chainId"),
        (signed(&PrivateKeySigner::random(), None, 1, &receipts), "hoster"),
        (
            signed(&world.hoster.key, Some(&world.hoster.key), 1, &receipts),
            "witness",
        ),
        (
            signed(&world.hoster.key, Some(&same_owner_witness), 1, &receipts),
            "witness",
        ),
        (
            signed(&world.hoster.key, Some(&not_a_witness.key), 1, &receipts),
            "witness",
        ),
        (witness_unsigned, "witnessSignature"),
        (signed(&world.hoster.key, None, 1, &too_many), "receipts"),
    ];
    for (body, field) in cases {
        let reply = world.app.post("/v1/receipts", None, body).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field,
            "{}",
            reply.text
        );
    }
    let truncated = axum::http::Request::post("/v1/receipts")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"chainId": 31337, "receipts": ["#))
        .unwrap();
    let reply = world.app.send(truncated).await;
    reply.problem(StatusCode::BAD_REQUEST, "malformed-body");
    assert_eq!(world.app.count("receipt_batches").await, 0);
    assert_eq!(world.app.count("billed_events").await, 0);

    // A retired hoster's batches stop counting.
    world
        .app
        .call(
            axum::http::Method::DELETE,
            &format!("/v1/nodes/{}", world.hoster.id),
            Some(&world.hoster.owner_token),
            None,
        )
        .await
        .ok();
    world.app.state.ad_server.refresh().await.unwrap();
    let retired = world.submit(1, &receipts, true).await;
    assert_eq!(
        retired.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "hoster"
    );
}
