//! The faults the relayer survives: killed between any two steps, a stuck transaction,
//! a reorg, an RPC outage, two relayers at once. The reference is the chain itself.

use super::*;

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_relayer_killed_at_any_step_settles_each_epoch_exactly_once(pool: PgPool) {
    let world = World::new(pool).await;
    let now = time::OffsetDateTime::now_utc();
    let mut spent = 0;
    // Each epoch, a relayer runs some steps and dies (is dropped, with everything it held
    // in memory); a fresh one takes over from the database alone.
    for (epoch, steps) in (1..).zip(1..=5) {
        let amount = 1_000_000 * epoch as u128;
        world
            .owe(&format!("epoch-{epoch}"), &[(hoster(1), amount), (hoster(2), 7)])
            .await;
        spent += amount + 7;
        let doomed = world.relayer(2);
        // 1: after closing the epoch (and building its tree).
        doomed.close_epoch(now).await.unwrap();
        if steps >= 2 {
            // 2: after storing the signed transaction.
            doomed.plan_settlement().await.unwrap();
            doomed.outbox().assign().await.unwrap();
            doomed.outbox().sign_queued().await.unwrap();
        }
        if steps >= 3 {
            // 3: after broadcasting it (anvil mines it at once).
            doomed.outbox().broadcast().await.unwrap();
        }
        if steps >= 4 {
            // 4: after its receipt is recorded.
            doomed.outbox().check().await.unwrap();
        }
        if steps >= 5 {
            // 5: with its confirmations in, before marking it confirmed.
            world.chain.mine(2).await;
        }
        drop(doomed);
        world.settle(&world.relayer(2), epoch).await;
        world.assert_settled_once(epoch as u64, spent).await;
    }
    // The last tree holds every payee's cumulative earnings.
    let cumulative: String =
        sqlx::query_scalar("SELECT cumulative::text FROM payout_leaves WHERE epoch = 5 AND account = $1")
            .bind(hoster(1).as_slice())
            .fetch_one(&world.pool)
            .await
            .unwrap();
    assert_eq!(cumulative, (1..=5).map(|e| 1_000_000 * e).sum::<u128>().to_string());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_stuck_transaction_is_replaced_with_higher_fees_and_lands(pool: PgPool) {
    let world = World::new(pool).await;
    let provider = world.chain.wallet(0);
    provider.anvil_set_auto_mine(false).await.unwrap();
    let relayer = world.relayer_at(world.chain.anvil.endpoint_url(), 1, Duration::ZERO);
    world.owe("stuck", &[(hoster(1), 5_000)]).await;

    relayer.close_epoch(time::OffsetDateTime::now_utc()).await.unwrap();
    relayer.plan_settlement().await.unwrap();
    relayer.outbox().assign().await.unwrap();
    relayer.outbox().sign_queued().await.unwrap();
    relayer.outbox().broadcast().await.unwrap();
    // Not mined: the next check replaces it under the same nonce.
    relayer.outbox().check().await.unwrap();
    relayer.outbox().broadcast().await.unwrap();

    let attempts: Vec<(Vec<u8>, String, String)> =
        sqlx::query_as("SELECT tx_hash, max_fee::text, priority_fee::text FROM outbox_attempts ORDER BY signed_at")
            .fetch_all(&world.pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 2, "one replacement");
    for (first, second) in [(&attempts[0].1, &attempts[1].1), (&attempts[0].2, &attempts[1].2)] {
        let (first, second): (u128, u128) = (first.parse().unwrap(), second.parse().unwrap());
        assert!(
            second * 10 >= first * 11,
            "fees rise by at least 10%: {first} -> {second}"
        );
    }

    provider.anvil_set_auto_mine(true).await.unwrap();
    world.settle(&relayer, 1).await;
    world.assert_settled_once(1, 5_000).await;
    let settled_by: Vec<u8> = sqlx::query_scalar("SELECT settled_tx FROM settlement_epochs WHERE epoch = 1")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(settled_by, attempts[1].0, "the replacement is what landed");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_settlement_removed_by_a_reorg_is_sent_again(pool: PgPool) {
    let world = World::new(pool).await;
    let relayer = world.relayer(4);
    world.owe("reorg", &[(hoster(1), 9_000)]).await;

    // Mined (anvil mines on arrival) and recorded, not yet confirmed.
    relayer.tick().await.unwrap();
    relayer.tick().await.unwrap();
    let first_block: Vec<u8> = sqlx::query_scalar("SELECT mined_block_hash FROM outbox WHERE status = 'mined'")
        .fetch_one(&world.pool)
        .await
        .unwrap();

    // The block that held it is replaced by an empty one.
    let provider = world.chain.wallet(0);
    provider.anvil_rollback(Some(1)).await.unwrap();
    provider.anvil_drop_all_transactions().await.unwrap();
    world.chain.mine(2).await;
    assert!(
        world.settled_events().await.is_empty(),
        "the reorg removed the settlement"
    );

    world.settle(&relayer, 1).await;
    world.assert_settled_once(1, 9_000).await;
    let final_block: Vec<u8> = sqlx::query_scalar("SELECT mined_block_hash FROM outbox WHERE kind = 'settle'")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_ne!(final_block, first_block, "it landed again, in another block");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_rpc_outage_is_waited_out_while_the_api_keeps_serving(pool: PgPool) {
    let world = World::new(pool).await;
    let (url, mode) = start_proxy(world.chain.anvil.endpoint_url(), DOWN).await;
    let relayer = world.relayer_at(url, 1, Duration::from_secs(600));
    let (stop, stopped) = watch::channel(());
    let task = tokio::spawn(relayer.run(shutdown(stopped)));
    world.owe("outage", &[(hoster(3), 4_242)]).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !world.confirmed(1).await,
        "nothing reaches the chain while its RPC is down"
    );
    assert!(world.settled_events().await.is_empty());
    let reply = world.app.get(&format!("/v1/payouts/{}", hoster(3)), None).await;
    assert_eq!(reply.ok()["tokens"][0]["pending"], "4242", "reads go on");

    mode.store(PASS, std::sync::atomic::Ordering::SeqCst);
    world.wait_confirmed(1, Duration::from_secs(30)).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    world.assert_settled_once(1, 4_242).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn of_two_relayers_only_the_leader_submits(pool: PgPool) {
    let world = World::new(pool).await;
    let (stop, stopped) = watch::channel(());
    let first = tokio::spawn(world.relayer(1).run(shutdown(stopped.clone())));
    let second = tokio::spawn(world.relayer(1).run(shutdown(stopped)));
    world.owe("pair", &[(hoster(4), 31_337)]).await;
    world.wait_confirmed(1, Duration::from_secs(30)).await;
    assert!(
        Leader::try_acquire(&world.pool, adescrow::settlement::relayer::LEADER_KEY)
            .await
            .unwrap()
            .is_none(),
        "one of them holds the relayer lock"
    );
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();

    world.assert_settled_once(1, 31_337).await;
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "a single signed transaction");
}
