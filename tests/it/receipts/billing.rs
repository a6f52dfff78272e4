//! Billed receipts split exactly: witnessed, unwitnessed, and with viewer rewards.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn witnessed_batches_bill_once_and_split_exactly(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "2001000", "cpc": "50007" }),
        1_000_000_000,
    )
    .await;
    let tickets = world.tickets(3, Some("anon-7")).await;
    let at = now();
    let receipts = [
        receipt(&tickets[0], "impression", at, Some("anon-7")),
        receipt(&tickets[0], "click", at + 1, Some("anon-7")),
        receipt(&tickets[1], "impression", at, Some("anon-7")),
        receipt(&tickets[2], "impression", at, Some("anon-7")),
    ];
    let reply = world.submit(1, &receipts, true).await;
    let answer = reply.ok().clone();
    assert_eq!(outcomes(&answer), ["billed"; 4]);
    assert_eq!(answer["witnessed"], true);
    assert_eq!(answer["receipts"][0]["price"], "2001");
    assert_eq!(answer["receipts"][1]["price"], "50007");

    // 3 impressions of 2001 and a click of 50007: 56010 in all.
    let hoster = world.earned(world.hoster.owner.address()).await;
    let witness = world.earned(world.witness.owner.address()).await;
    let platform = world.earned(PLATFORM).await;
    assert_eq!(hoster + witness + platform, 56_010);
    // Per event, largest remainder: 2001 -> 1801 / 180 / 20; 50007 -> 45006 / 4501 / 500.
    assert_eq!(hoster, 3 * 1801 + 45_006);
    assert_eq!(platform, 3 * 180 + 4501);
    assert_eq!(witness, 3 * 20 + 500);
    assert_ledger_consistent(&pool).await;

    // The hoster's owner sees it as earnings.
    let owner_token = world.app.token(&world.hoster.owner).await;
    let earnings = world.app.get("/v1/me/earnings", Some(&owner_token)).await;
    assert_eq!(earnings.ok()[0]["earned"], hoster.to_string());

    // Billed numbers reach the advertiser's analytics.
    let analytics = world
        .app
        .get(
            &format!("/v1/campaigns/{}/analytics", world.campaign),
            Some(&world.advertiser.token),
        )
        .await;
    assert_eq!(analytics.ok()["totals"]["impressions"], 3);
    assert_eq!(analytics.body["totals"]["clicks"], 1);
    assert_eq!(analytics.body["totals"]["spend"], "56010");
    assert_eq!(analytics.body["budget"]["billed"], "56010");
    assert_eq!(
        analytics.body["budget"]["available"],
        (1_000_000_000u128 - 56_010).to_string()
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn unwitnessed_batches_pay_the_hoster_half(pool: PgPool) {
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "3001000" }), 1_000_000_000).await;
    let tickets = world.tickets(1, None).await;
    let reply = world
        .submit(1, &[receipt(&tickets[0], "impression", now(), None)], false)
        .await;
    assert_eq!(reply.ok()["witnessed"], false);
    // 3001 / 2: the odd unit goes to the hoster (a tie, first payee).
    assert_eq!(world.earned(world.hoster.owner.address()).await, 1501);
    assert_eq!(world.earned(PLATFORM).await, 1500);
    assert_eq!(world.earned(world.witness.owner.address()).await, 0);
    assert_ledger_consistent(&pool).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn viewers_holding_consent_earn_from_the_platform_share(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "1000000", "cpc": "100000" }),
        1_000_000_000,
    )
    .await;
    let (viewer, viewer_id) = world.signed_in_viewer().await;
    mirror_consent(&pool, viewer.address(), keccak256(b"rewards"), 1, Some(now() + 3600)).await;
    let ticket = world.tickets(1, Some(&viewer_id)).await.remove(0);
    let at = now();
    let receipts = [
        receipt(&ticket, "impression", at, Some(&viewer_id)),
        receipt(&ticket, "click", at, Some(&viewer_id)),
    ];
    assert_eq!(
        outcomes(world.submit(1, &receipts, true).await.ok()),
        ["billed", "billed"]
    );
    // Clicks reward 5% (5000 of 100000) out of the platform's 9%; impressions nothing.
    assert_eq!(world.earned(viewer.address()).await, 5_000);
    assert_eq!(world.earned(PLATFORM).await, 90 + 9_000 - 5_000);
    assert_ledger_consistent(&pool).await;
}

/// A witness that confirms only some receipts earns only on those; the others pay the
/// unwitnessed split. The bitmap is part of what both nodes signed: a resubmission under
/// the same sequence with another bitmap is another batch, and a bitmap of the wrong length
/// is refused naming it.
#[sqlx::test(migrator = "MIGRATOR")]
async fn only_the_receipts_the_witness_confirmed_pay_the_witnessed_split(pool: PgPool) {
    let world = World::new(pool.clone(), json!({}), json!({ "cpm": "2001000" }), 1_000_000_000).await;
    let tickets = world.tickets(3, None).await;
    let at = now();
    let receipts: Vec<Value> = tickets.iter().map(|t| receipt(t, "impression", at, None)).collect();
    let body = |confirmed: &Confirmations| {
        signed_confirming(
            CHAIN_ID,
            ESCROW,
            &world.hoster.key,
            Some((&world.witness.key, confirmed)),
            1,
            &receipts,
        )
    };

    let mut wrong_length = body(&Confirmations::from_fn(3, |_| true));
    wrong_length["confirmed"] = json!("0x0700");
    let refused = world.app.post("/v1/receipts", None, wrong_length).await;
    assert_eq!(
        refused.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "confirmed"
    );
    let mut missing = body(&Confirmations::from_fn(3, |_| true));
    missing.as_object_mut().unwrap().remove("confirmed");
    let refused = world.app.post("/v1/receipts", None, missing).await;
    assert_eq!(
        refused.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
        "confirmed"
    );
    assert_eq!(world.app.count("receipt_batches").await, 0, "nothing written");

    // The witness saw the first and the last impression, not the middle one.
    let confirmed = Confirmations::from_fn(3, |i| i != 1);
    let answer = world
        .app
        .post("/v1/receipts", None, body(&confirmed))
        .await
        .ok()
        .clone();
    assert_eq!(outcomes(&answer), ["billed"; 3]);
    let witnessed: Vec<bool> = (0..3).map(|i| answer["receipts"][i]["witnessed"] == true).collect();
    assert_eq!(witnessed, [true, false, true]);
    // 2001 witnessed: 1801 / 180 / 20; unwitnessed: 1001 / 1000 (largest remainder).
    assert_eq!(world.earned(world.hoster.owner.address()).await, 2 * 1801 + 1001);
    assert_eq!(world.earned(world.witness.owner.address()).await, 2 * 20);
    assert_eq!(world.earned(PLATFORM).await, 2 * 180 + 1000);
    let by_witness: i64 = sqlx::query_scalar("SELECT count(*) FROM billed_events WHERE witness_node_id IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(by_witness, 2);
    assert_ledger_consistent(&pool).await;

    // The same batch again gets the same answer; another bitmap under its sequence is refused.
    let again = world.app.post("/v1/receipts", None, body(&confirmed)).await;
    assert_eq!(again.ok()["receipts"], answer["receipts"]);
    let all = Confirmations::from_fn(3, |_| true);
    let other = world.app.post("/v1/receipts", None, body(&all)).await;
    assert_eq!(other.problem(StatusCode::CONFLICT, "conflict")["field"], "sequence");
    assert_eq!(
        world.earned(world.witness.owner.address()).await,
        2 * 20,
        "nothing billed twice"
    );
}

/// Billing books each batch's leaderboard scores in its own transaction: the hoster's
/// earnings and impressions, the witness's confirmed receipts, the advertiser's spend.
#[sqlx::test(migrator = "MIGRATOR")]
async fn billing_books_leaderboard_scores_with_the_batch(pool: PgPool) {
    let world = World::new(
        pool.clone(),
        json!({}),
        json!({ "cpm": "2001000", "cpc": "50007" }),
        1_000_000_000,
    )
    .await;
    let tickets = world.tickets(2, None).await;
    let at = now();
    let receipts = [
        receipt(&tickets[0], "impression", at, None),
        receipt(&tickets[0], "click", at + 1, None),
        receipt(&tickets[1], "impression", at, None),
    ];
    // The witness saw the first ad's impression and click, not the second impression.
    let confirmed = Confirmations::from_fn(3, |i| i < 2);
    let body = signed_confirming(
        CHAIN_ID,
        ESCROW,
        &world.hoster.key,
        Some((&world.witness.key, &confirmed)),
        1,
        &receipts,
    );
    assert_eq!(
        outcomes(world.app.post("/v1/receipts", None, body).await.ok()),
        ["billed"; 3]
    );
    let token: Vec<u8> = sqlx::query_scalar("SELECT token FROM campaigns WHERE id = $1::uuid")
        .bind(&world.campaign)
        .fetch_one(&pool)
        .await
        .unwrap();
    let token = Address::from_slice(&token);
    let top = |category: &'static str, money: bool| {
        let app = world.app.clone();
        let query = if money {
            format!("&token={token}")
        } else {
            String::new()
        };
        async move {
            let board = app
                .get(&format!("/v1/leaderboards/{category}?period=day{query}"), None)
                .await;
            let entry = &board.ok()["entries"][0];
            (
                entry["subject"].as_str().unwrap().parse::<Address>().unwrap(),
                entry["score"].as_str().unwrap().to_owned(),
            )
        }
    };
    // Witnessed: 2001 -> 1801 to the hoster, 50007 -> 45006; unwitnessed 2001 -> 1001.
    let hoster = world.hoster.owner.address();
    assert_eq!(
        top("hoster_earnings", true).await,
        (hoster, (1801 + 45_006 + 1001).to_string())
    );
    assert_eq!(top("impressions_served", false).await, (hoster, "2".to_owned()));
    assert_eq!(
        top("witness_work", false).await,
        (world.witness.owner.address(), "2".to_owned())
    );
    let spend = (2 * 2001 + 50_007).to_string();
    assert_eq!(
        top("advertiser_spend", true).await,
        (world.advertiser.wallet.address(), spend)
    );
}
