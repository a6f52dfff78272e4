//! A hoster's statement on a real anvil: its earnings' states follow the chain from
//! released through an epoch in its challenge window to claimable and claimed, and its
//! totals are the ledger's.

use adescrow::money::holds::HoldReason;
use adescrow::money::ledger::NewHold;
use adescrow::statements::roller;
use time::OffsetDateTime;

use super::*;

/// Posts `amount` of the campaign's spend to `payee` as a receipt batch's hoster share,
/// held for review when `held`.
async fn earn(world: &World, source_id: &str, payee: Address, amount: u128, held: bool) {
    let mut posting = Posting::default();
    posting.spend(world.campaign, Amount(amount));
    posting.earn(Role::Hoster, payee, Amount(amount));
    if held {
        posting = posting.hold(NewHold {
            reason: HoldReason::Review,
            until: None,
            debtor: None,
            settled_after: None,
            note: "a person looks at this batch".into(),
        });
    }
    let mut conn = world.pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    ledger::post(
        &mut tx,
        CHAIN_ID,
        Source::ReceiptBatch,
        source_id,
        &BTreeMap::from([(world.chain.token, posting)]),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The payee's statement for the current month, after the roller caught up.
async fn statement(world: &World, token: &str) -> Value {
    roller::catch_up(&world.pool, OffsetDateTime::now_utc()).await.unwrap();
    world.app.get("/v1/statements/me", Some(token)).await.ok().clone()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_statement_follows_its_earnings_through_an_epoch_its_window_and_a_claim(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = world.chain.wallet(0);
    world.set_challenge_window(3_600).await;
    let hoster = PrivateKeySigner::from(world.chain.anvil.keys()[7].clone());
    let payee = hoster.address();
    let token = world.app.token(&hoster).await;
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    let relayer = world.relayer(1);

    earn(&world, "900001", payee, 70_000, false).await;
    earn(&world, "900002", payee, 5_000, true).await;
    let s = statement(&world, &token).await;
    let lines = &s["statement"]["tokens"][0];
    assert_eq!(lines["lines"][0]["line"], "ad_revenue", "{s}");
    assert_eq!(
        (&lines["opening"], &lines["lines"][0]["amount"], &lines["closing"]),
        (&json!("0"), &json!("75000"), &json!("75000"))
    );
    let states = &s["states"][0];
    assert_eq!(states["held"][0]["amount"], "5000", "{s}");
    assert_eq!(states["held"][0]["reason"], "review");
    assert_eq!(
        (&states["released"], &states["inEpoch"], &states["claimable"]),
        (&json!("70000"), &Value::Null, &json!("0"))
    );
    assert_eq!(s["closed"], false, "this month is open");
    assert_eq!(s["hash"], Value::Null);

    // Settled: in epoch 1, waiting for its challenge window.
    world.settle(&relayer, 1).await;
    sync(&mut follower).await;
    let s = statement(&world, &token).await;
    let states = &s["states"][0];
    assert_eq!(states["inEpoch"]["epoch"], 1, "{s}");
    assert_eq!(states["inEpoch"]["amount"], "70000");
    assert!(states["inEpoch"]["claimableAt"].is_i64(), "{s}");
    assert_eq!(states["released"], "0");

    // The window passes and the root is activated: claimable.
    admin.anvil_increase_time(3_601).await.unwrap();
    world.chain.mine(1).await;
    for _ in 0..4 {
        relayer.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let s = statement(&world, &token).await;
    let states = &s["states"][0];
    assert_eq!(
        (&states["inEpoch"], &states["claimable"]),
        (&Value::Null, &json!("70000")),
        "{s}"
    );

    // Claimed on chain with the API's proof: claimed, with its transaction.
    claim_with_api_proof(&world, &hoster, "70000", "0", "70000").await;
    sync(&mut follower).await;
    let s = statement(&world, &token).await;
    let states = &s["states"][0];
    assert_eq!(
        (&states["claimable"], &states["claimed"]),
        (&json!("0"), &json!("70000")),
        "{s}"
    );
    let claim_tx: String = sqlx::query_scalar("SELECT '0x' || encode(tx_hash, 'hex') FROM mirror_claims")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(states["claimedTx"], claim_tx.as_str());
    assert_eq!(states["held"][0]["amount"], "5000", "still held");

    // The statement's closing balance is the ledger's: everything the payee accrued.
    let accrued: String = sqlx::query_scalar("SELECT (released + held)::text FROM payee_balances WHERE payee = $1")
        .bind(payee.as_slice())
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(s["statement"]["tokens"][0]["closing"], accrued.as_str());
}
