//! From the ledger to a claim on chain: epochs settle, roots activate after their
//! challenge window, and the API's proofs claim exactly what is owed.

use alloy::primitives::aliases::U40;
use alloy::sol_types::{SolCall, SolValue};

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn ledger_to_claim_end_to_end(pool: PgPool) {
    let world = World::new(pool).await;
    let claimer = PrivateKeySigner::from(world.chain.anvil.keys()[5].clone());
    let payee = claimer.address();
    let mut follower = world.chain.follower(&world.pool, world.chain.anvil.endpoint_url(), 0);
    let relayer = world.relayer(1);

    world.owe("first", &[(payee, 600_000), (hoster(1), 400_000)]).await;
    let before = world.app.get(&format!("/v1/payouts/{payee}"), None).await;
    let before = before.ok();
    assert_eq!(before["epoch"], Value::Null, "nothing settled yet: {before}");
    assert_eq!(before["tokens"][0]["pending"], "600000");

    world.settle(&relayer, 1).await;
    sync(&mut follower).await;
    // The advertiser learns when the unspent budget can be withdrawn: end + grace.
    let escrow = world
        .app
        .get(&format!("/v1/escrow/campaigns/{}", world.chain.campaign), None)
        .await;
    assert_eq!(
        escrow.ok()["withdrawableAt"],
        4_000_000_000i64 + 86_400,
        "{}",
        escrow.text
    );
    assert_eq!(escrow.body["debited"], "1000000");
    let balance = world.token_balance(payee).await;
    let claim = claim_with_api_proof(&world, &claimer, "600000", "0", "600000").await;
    assert_eq!(world.token_balance(payee).await, balance + U256::from(600_000));
    sync(&mut follower).await;
    let after = world.app.get(&format!("/v1/payouts/{payee}"), None).await;
    let token = &after.ok()["tokens"][0];
    assert_eq!(
        (&token["claimed"], &token["claimable"], &token["pending"]),
        (&json!("600000"), &json!("0"), &json!("0")),
        "{token}"
    );

    // The same proof again pays nothing.
    send(&world, &claimer, claim).await;
    assert_eq!(world.token_balance(payee).await, balance + U256::from(600_000));

    // A later epoch: the new cumulative amount pays only what was added.
    world.owe("second", &[(payee, 50_000)]).await;
    world.settle(&relayer, 2).await;
    sync(&mut follower).await;
    claim_with_api_proof(&world, &claimer, "650000", "600000", "50000").await;
    assert_eq!(world.token_balance(payee).await, balance + U256::from(650_000));
    world.assert_settled_once(2, 1_050_000).await;

    // A malformed account is refused with the field named.
    world
        .app
        .get("/v1/payouts/0x1234", None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_root_is_activated_after_its_challenge_window_and_then_claimable(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = world.chain.wallet(0);
    world.set_challenge_window(3_600).await;
    let claimer = PrivateKeySigner::from(world.chain.anvil.keys()[6].clone());
    let relayer = world.relayer(1);
    world.owe("windowed", &[(claimer.address(), 70_000)]).await;
    world.settle(&relayer, 1).await;

    // Settled but pending: claims cannot use it yet, and nothing activates it early.
    for _ in 0..3 {
        relayer.tick().await.unwrap();
    }
    let pending = world.app.get(&format!("/v1/payouts/{}", claimer.address()), None).await;
    assert_eq!(pending.ok()["epoch"], Value::Null, "{}", pending.text);
    assert_eq!(pending.body["tokens"][0]["pending"], "70000", "owed, not claimable yet");

    // The window passes on chain: the relayer activates the root.
    admin.anvil_increase_time(3_601).await.unwrap();
    world.chain.mine(1).await;
    for _ in 0..4 {
        relayer.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let activations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'activate' AND status = 'confirmed'")
            .fetch_one(&world.pool)
            .await
            .unwrap();
    assert_eq!(activations, 1, "one activate() transaction");
    // Sent with the epoch's debits' hash and totals exactly as its `Settled` event has them.
    let calldata: Vec<u8> = sqlx::query_scalar("SELECT calldata FROM outbox WHERE kind = 'activate'")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    let activate = AdEscrow::activateCall::abi_decode(&calldata).unwrap();
    let settled = world.settled_logs().await.remove(0);
    assert_eq!(activate.debitsHash, keccak256(settled.debits.abi_encode()));
    assert_eq!(activate.totals.abi_encode(), settled.totals.abi_encode());
    let state = AdEscrow::new(world.chain.deployment.ad_escrow.address, &admin)
        .settlementState()
        .call()
        .await
        .unwrap();
    assert_eq!(
        (state.currentEpoch, state.pendingClaimableAt),
        (1, U40::ZERO),
        "activated"
    );
    let balance = world.token_balance(claimer.address()).await;
    claim_with_api_proof(&world, &claimer, "70000", "0", "70000").await;
    assert_eq!(
        world.token_balance(claimer.address()).await,
        balance + U256::from(70_000)
    );

    // The next epoch is accepted now that the previous root is active.
    world.owe("after", &[(claimer.address(), 1)]).await;
    world.settle(&relayer, 2).await;
    world.assert_settled_once(2, 70_001).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_activation_a_reorg_removed_stops_counting_until_it_lands_again(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = world.chain.wallet(0);
    world.set_challenge_window(3_600).await;
    let payee = hoster(1);
    // Four confirmations: the activation is mined and seen, but not final, when the reorg
    // comes.
    let relayer = world.relayer(4);
    world.owe("reorged activation", &[(payee, 5_000)]).await;
    world.settle(&relayer, 1).await;
    admin.anvil_increase_time(3_601).await.unwrap();
    world.chain.mine(1).await;
    let activated = async || -> bool {
        sqlx::query_scalar("SELECT activated_at IS NOT NULL FROM settlement_epochs WHERE epoch = 1")
            .fetch_one(&world.pool)
            .await
            .unwrap()
    };
    let activation = async || -> String {
        sqlx::query_scalar("SELECT status::text FROM outbox WHERE kind = 'activate'")
            .fetch_one(&world.pool)
            .await
            .unwrap()
    };
    let claimable_epoch =
        async || -> Value { world.app.get(&format!("/v1/payouts/{payee}"), None).await.ok()["epoch"].clone() };

    // The relayer queues activate(), sends it (anvil mines it at once), and records it mined.
    for _ in 0..3 {
        relayer.tick().await.unwrap();
    }
    assert_eq!(activation().await, "mined");
    assert!(activated().await, "activated on chain");
    assert_eq!(claimable_epoch().await, 1);

    // The block that held the activation is replaced by empty ones: the chain's current root
    // is none again, and the epoch stops counting as activated.
    admin.anvil_rollback(Some(1)).await.unwrap();
    admin.anvil_drop_all_transactions().await.unwrap();
    world.chain.mine(2).await;
    let state = AdEscrow::new(world.chain.deployment.ad_escrow.address, &admin)
        .settlementState()
        .call()
        .await
        .unwrap();
    assert_eq!(state.currentEpoch, 0, "the reorg removed the activation");
    relayer.plan_activation().await.unwrap();
    assert!(!activated().await, "not activated while the chain says otherwise");
    assert_eq!(claimable_epoch().await, Value::Null, "nothing claimable meanwhile");

    // The outbox sends it again; it lands, gets its confirmations, and counts again.
    for _ in 0..40 {
        relayer.tick().await.unwrap();
        if activation().await == "confirmed" {
            break;
        }
        world.chain.mine(1).await;
    }
    assert_eq!(
        activation().await,
        "confirmed",
        "one activation, sent again under its key"
    );
    assert!(activated().await, "activated again");
    assert_eq!(claimable_epoch().await, 1);
}
