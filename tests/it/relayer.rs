//! The settlement relayer against a real anvil and real Postgres: the whole path from the
//! ledger to a claim on chain, and the faults it must survive (a relayer killed between any
//! two steps, a stuck transaction, a reorg, an RPC outage, two relayers at once). The
//! reference is always the chain itself.

use std::collections::BTreeMap;
use std::time::Duration;

use adescrow::contracts::{AdEscrow, ConsentGrant, ConsentRegistry, TestToken, consent_domain};
use adescrow::db::MIGRATOR;
use adescrow::leader::Leader;
use adescrow::ledger::{self, Posting, Role, Source};
use adescrow::money::Amount;
use adescrow::relayer::outbox::OutboxConfig;
use adescrow::relayer::rpc::RelayerRpc;
use adescrow::relayer::{EpochPolicy, Relayer, RelayerConfig};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolEvent, SolStruct};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use crate::fixtures::Advertiser;
use crate::indexer::{Chain, sync};
use crate::rpc_faults::{DOWN, PASS, start_proxy};
use crate::support::{CHAIN_ID, TestApp};

const GWEI: u128 = 1_000_000_000;

/// A devnet with the contracts, a funded escrow campaign and its off-chain twin.
struct World {
    chain: Chain,
    pool: PgPool,
    app: TestApp,
    /// The off-chain campaign whose spend the ledger records.
    campaign: Uuid,
}

impl World {
    async fn new(pool: PgPool) -> World {
        let chain = Chain::start().await;
        let (escrow, registry) = (
            chain.deployment.ad_escrow.address,
            chain.deployment.consent_registry.address,
        );
        let app = TestApp::with(pool.clone(), |config| {
            config.escrow_address = Some(escrow);
            config.consent_address = Some(registry);
            config.grace_period = Some(86_400);
        });
        let advertiser = Advertiser::new(&app, "UTC", 10u128.pow(15), 10u128.pow(15)).await;
        let (campaign, _) = advertiser
            .campaign(
                &app,
                json!({ "token": chain.token, "chainCampaignId": chain.campaign }),
                json!({ "cpm": "1000000" }),
            )
            .await;
        let campaign = campaign["id"].as_str().unwrap().parse().unwrap();
        World {
            chain,
            pool,
            app,
            campaign,
        }
    }

    fn relayer_at(&self, url: Url, confirmations: u64, replace_after: Duration) -> Relayer {
        let deployment = &self.chain.deployment;
        let config = RelayerConfig {
            chain_id: CHAIN_ID,
            escrow: deployment.ad_escrow.address,
            escrow_block: deployment.ad_escrow.block,
            consent_registry: deployment.consent_registry.address,
            // Every posting is due at once; the tests decide when epochs close.
            epochs: EpochPolicy {
                interval: Duration::ZERO,
                owed_threshold: u128::MAX,
            },
            outbox: OutboxConfig {
                confirmations,
                replace_after,
                fee_ceiling: 1_000 * GWEI,
            },
            poll_interval: Duration::from_millis(50),
            low_balance: 0,
        };
        let settler = PrivateKeySigner::from(self.chain.anvil.keys()[1].clone());
        Relayer::new(
            self.pool.clone(),
            RelayerRpc::new(url, Duration::from_secs(5)),
            EthereumWallet::new(settler),
            config,
        )
    }

    fn relayer(&self, confirmations: u64) -> Relayer {
        self.relayer_at(self.chain.anvil.endpoint_url(), confirmations, Duration::from_secs(600))
    }

    /// Posts spend of the campaign to the ledger, earned by `payees`, as billing would.
    async fn owe(&self, source: &str, payees: &[(Address, u128)]) {
        let mut posting = Posting::default();
        posting.spend(self.campaign, Amount(payees.iter().map(|(_, a)| a).sum()));
        for (payee, amount) in payees {
            posting.earn(Role::Hoster, *payee, Amount(*amount));
        }
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        ledger::post(
            &mut tx,
            Source::Adjustment,
            source,
            &BTreeMap::from([(self.chain.token, posting)]),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// Ticks `relayer` (mining a block after each tick) until `epoch` is confirmed.
    async fn settle(&self, relayer: &Relayer, epoch: i64) {
        for _ in 0..40 {
            relayer.tick().await.unwrap();
            if self.confirmed(epoch).await {
                return;
            }
            self.chain.mine(1).await;
        }
        panic!("epoch {epoch} was never confirmed");
    }

    async fn confirmed(&self, epoch: i64) -> bool {
        sqlx::query_scalar::<_, bool>(
            "SELECT confirmed_at IS NOT NULL FROM settlement_epochs WHERE chain_id = $1 AND epoch = $2",
        )
        .bind(CHAIN_ID as i64)
        .bind(epoch)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
        .unwrap_or(false)
    }

    /// Waits (in real time, for relayers running on their own) until `epoch` is confirmed.
    async fn wait_confirmed(&self, epoch: i64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.confirmed(epoch).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "epoch {epoch} not confirmed in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `Settled` events on the canonical chain, per epoch.
    async fn settled_events(&self) -> BTreeMap<u64, usize> {
        let provider = self.chain.wallet(0);
        let logs = provider
            .get_logs(
                &Filter::new()
                    .address(self.chain.deployment.ad_escrow.address)
                    .event_signature(AdEscrow::Settled::SIGNATURE_HASH)
                    .from_block(0),
            )
            .await
            .unwrap();
        let mut epochs = BTreeMap::new();
        for log in logs {
            let settled = AdEscrow::Settled::decode_log_data(log.data()).unwrap();
            *epochs.entry(settled.epoch).or_default() += 1;
        }
        epochs
    }

    /// Asserts that the chain holds epochs 1..=`epochs` once each, that it settled exactly
    /// what the ledger spent, and that the relayer's bookkeeping agrees.
    async fn assert_settled_once(&self, epochs: u64, spent: u128) {
        let expected: BTreeMap<u64, usize> = (1..=epochs).map(|e| (e, 1)).collect();
        assert_eq!(self.settled_events().await, expected, "Settled events per epoch");
        let escrow = AdEscrow::new(self.chain.deployment.ad_escrow.address, self.chain.wallet(0));
        let state = escrow.settlementState().call().await.unwrap();
        assert_eq!(state.lastEpoch, epochs, "the chain's last epoch");
        let totals = escrow.tokenTotals(self.chain.token).call().await.unwrap();
        assert_eq!(
            totals.settled,
            U256::from(spent),
            "settled on chain = spent in the ledger"
        );
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'settle' AND status <> 'failed'")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        assert_eq!(live, epochs as i64, "one live outbox row per epoch");
        let confirmed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM settlement_epochs WHERE confirmed_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        assert_eq!(confirmed, epochs as i64, "epochs confirmed in Postgres");
    }

    async fn token_balance(&self, account: Address) -> U256 {
        TestToken::new(self.chain.token, self.chain.wallet(0))
            .balanceOf(account)
            .call()
            .await
            .unwrap()
    }
}

fn hoster(n: u8) -> Address {
    Address::repeat_byte(0xa0 + n)
}

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

/// Reads the payout from the API, checks its figures, and claims with its calldata.
async fn claim_with_api_proof(
    world: &World,
    claimer: &PrivateKeySigner,
    cumulative: &str,
    claimed: &str,
    claimable: &str,
) -> Bytes {
    let reply = world.app.get(&format!("/v1/payouts/{}", claimer.address()), None).await;
    let payouts = reply.ok();
    let token = &payouts["tokens"][0];
    assert_eq!(
        (&token["cumulative"], &token["claimed"], &token["claimable"]),
        (&json!(cumulative), &json!(claimed), &json!(claimable)),
        "{payouts}"
    );
    assert_eq!(
        payouts["escrow"].as_str().unwrap().parse::<Address>().unwrap(),
        world.chain.deployment.ad_escrow.address
    );
    let calldata: Bytes = token["calldata"].as_str().unwrap().parse().unwrap();
    send(world, claimer, calldata.clone()).await;
    calldata
}

async fn send(world: &World, from: &PrivateKeySigner, calldata: Bytes) {
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(EthereumWallet::new(from.clone()))
        .connect_http(world.chain.anvil.endpoint_url());
    let request = TransactionRequest::default()
        .with_to(world.chain.deployment.ad_escrow.address)
        .with_input(calldata);
    let receipt = provider
        .send_transaction(request)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the claim succeeds");
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
        Leader::try_acquire(&world.pool, adescrow::relayer::LEADER_KEY)
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

#[sqlx::test(migrator = "MIGRATOR")]
async fn gasless_consent_is_checked_queued_once_and_lands(pool: PgPool) {
    let world = World::new(pool).await;
    let registry = world.chain.deployment.consent_registry.address;
    let user = PrivateKeySigner::random();
    let scope = keccak256("personalized-ads");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let grant = |nonce: u64, signer: &PrivateKeySigner, deadline: u64| {
        let message = ConsentGrant {
            user: user.address(),
            scope,
            expiry: now + 86_400,
            nonce: U256::from(nonce),
            deadline: U256::from(deadline),
        };
        let digest = message.eip712_signing_hash(&consent_domain(CHAIN_ID, registry));
        let signature = signer.sign_hash_sync(&digest).unwrap();
        json!({
            "action": "grant", "user": user.address(), "scope": scope, "expiry": now + 86_400,
            "nonce": nonce.to_string(), "deadline": deadline.to_string(),
            "signature": format!("0x{}", hex::encode(signature.as_bytes())),
        })
    };

    let first = world.app.post("/v1/consent", None, grant(0, &user, now + 600)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let digest = first.body["digest"].as_str().unwrap().to_owned();
    let again = world.app.post("/v1/consent", None, grant(0, &user, now + 600)).await;
    assert_eq!(again.status, StatusCode::OK, "a duplicate returns the first request");
    assert_eq!(again.body["digest"], digest.as_str());

    // Refused before anything is queued.
    let stranger = PrivateKeySigner::random();
    let refusals = [
        (grant(0, &stranger, now + 600), "signature"),
        (grant(0, &user, now - 1), "deadline"),
        (
            {
                let mut body = grant(0, &user, now + 600);
                body.as_object_mut().unwrap().remove("expiry");
                body
            },
            "expiry",
        ),
        (
            {
                let mut body = grant(0, &user, now + 600);
                body["signature"] = json!("0x1234");
                body
            },
            "signature",
        ),
    ];
    for (body, field) in refusals {
        let reply = world.app.post("/v1/consent", None, body).await;
        assert_eq!(
            reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field")["field"],
            field
        );
    }
    // Signed right but for a nonce the registry will not take: it fails without gas spent.
    let wrong_nonce = world.app.post("/v1/consent", None, grant(7, &user, now + 600)).await;
    assert_eq!(wrong_nonce.status, StatusCode::ACCEPTED);
    let wrong_digest = wrong_nonce.body["digest"].as_str().unwrap().to_owned();

    let relayer = world.relayer(1);
    for _ in 0..5 {
        relayer.tick().await.unwrap();
        world.chain.mine(1).await;
    }
    let landed = world.app.get(&format!("/v1/consent/requests/{digest}"), None).await;
    assert_eq!(landed.ok()["status"], "confirmed", "{}", landed.text);
    assert!(landed.body["txHash"].is_string());
    let refused = world
        .app
        .get(&format!("/v1/consent/requests/{wrong_digest}"), None)
        .await;
    assert_eq!(refused.ok()["status"], "failed");
    assert!(refused.body["error"].as_str().unwrap().contains("registry refuses"));
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&world.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "only the valid request was signed and sent");

    let consent = ConsentRegistry::new(registry, world.chain.wallet(0));
    assert!(consent.hasConsent(user.address(), scope).call().await.unwrap());
    world
        .app
        .get(&format!("/v1/consent/requests/{}", B256::repeat_byte(9)), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
}

async fn shutdown(mut stopped: watch::Receiver<()>) {
    let _ = stopped.changed().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_root_is_activated_after_its_challenge_window_and_then_claimable(pool: PgPool) {
    let world = World::new(pool).await;
    let admin = world.chain.wallet(0);
    AdEscrow::new(world.chain.deployment.ad_escrow.address, &admin)
        .setChallengeWindow(alloy::primitives::aliases::U40::from(3_600u64))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
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
