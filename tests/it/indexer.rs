//! The chain mirror against a real anvil and real Postgres: backfill then head following,
//! reorgs, crashes and RPC faults. The reference is always the chain itself, read with direct
//! contract calls.

use std::path::PathBuf;
use std::time::Duration;

use adescrow::contracts::{AdEscrow, ConsentRegistry, IAdEscrow, TestToken};
use adescrow::platform::deploy::{DeployArgs, Deployment, deploy};
use adescrow::settlement::payout_tree::{PayoutLeaf, PayoutTree};
use adescrow_chain::rpc::ChainRpc;
use adescrow_indexer::events::Contracts;
use adescrow_indexer::follower::{Follower, FollowerConfig, Step};
use alloy::network::EthereumWallet;
use alloy::node_bindings::AnvilInstance;
use alloy::primitives::aliases::U40;
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use sqlx::PgPool;
use url::Url;

use crate::support::{TestApp, spawn_anvil};
use adescrow::platform::db::MIGRATOR;

/// A devnet with the contracts deployed and one funded campaign.
pub struct Chain {
    pub anvil: AnvilInstance,
    pub deployment: Deployment,
    pub token: Address,
    pub campaign: B256,
}

impl Chain {
    pub async fn start() -> Self {
        let anvil = spawn_anvil();
        let deployment = deploy(&DeployArgs {
            rpc_url: anvil.endpoint_url(),
            deployer_key: PrivateKeySigner::from(anvil.keys()[0].clone()),
            admin: None,
            settler: Some(anvil.addresses()[1]),
            guardian: Some(anvil.addresses()[2]),
            grace_period: Duration::from_secs(86_400),
            challenge_window: Duration::ZERO,
            test_token: true,
            out: PathBuf::new(),
        })
        .await
        .unwrap();
        let token = deployment.test_token.unwrap().address;
        let chain = Self {
            anvil,
            deployment,
            token,
            campaign: keccak256("campaign"),
        };
        chain.fund_wallet(token, 3, U256::from(10u64.pow(12))).await;
        AdEscrow::new(chain.deployment.ad_escrow.address, chain.wallet(3))
            .openCampaign(
                chain.campaign,
                token,
                U256::from(10u64.pow(11)),
                U40::from(4_000_000_000u64),
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        chain
    }

    /// Mints `amount` of `token` to wallet `index` and lets the escrow take it.
    pub async fn fund_wallet(&self, token: Address, index: usize, amount: U256) {
        let erc20 = TestToken::new(token, self.wallet(index));
        erc20
            .mint(self.anvil.addresses()[index], amount)
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        erc20
            .approve(self.deployment.ad_escrow.address, amount)
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
    }

    pub fn wallet(&self, index: usize) -> DynProvider {
        let signer = PrivateKeySigner::from(self.anvil.keys()[index].clone());
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }

    pub fn follower(&self, pool: &PgPool, url: Url, finality_depth: u64) -> Follower {
        let contracts = Contracts {
            escrow: self.deployment.ad_escrow.address,
            consent: self.deployment.consent_registry.address,
        };
        let mut config = FollowerConfig::new(contracts, self.deployment.ad_escrow.block);
        config.finality_depth = finality_depth;
        config.max_range = 50;
        config.window = 64;
        config.poll_interval = Duration::from_millis(10);
        Follower::new(
            ChainRpc::new(url, self.anvil.chain_id(), Duration::from_secs(5)).role("indexer"),
            pool.clone(),
            config,
        )
    }

    /// Grants consent for `count` scopes from wallet `index`, in one mined block.
    pub async fn grant_many(&self, index: usize, count: u64, expiry: u64) {
        let wallet = self.wallet(index);
        wallet.anvil_set_auto_mine(false).await.unwrap();
        let registry = ConsentRegistry::new(self.deployment.consent_registry.address, &wallet);
        let nonce = wallet
            .get_transaction_count(self.anvil.addresses()[index])
            .await
            .unwrap();
        for i in 0..count {
            let _pending = registry
                .grant(B256::from(U256::from(i)), expiry)
                .nonce(nonce + i)
                .gas(100_000)
                .max_fee_per_gas(10_000_000_000)
                .max_priority_fee_per_gas(1)
                .send()
                .await
                .unwrap();
        }
        wallet.anvil_mine(Some(1), None).await.unwrap();
        wallet.anvil_set_auto_mine(true).await.unwrap();
    }

    /// Settles `epoch` debiting `amount` from the campaign, paying it all to `payee`.
    async fn settle(&self, epoch: u64, payee: Address, cumulative: U256, amount: U256) -> PayoutTree {
        let leaf = PayoutLeaf {
            account: payee,
            token: self.token,
            index: 0,
            cumulative_amount: cumulative,
        };
        self.settle_leaves(epoch, vec![leaf], amount).await
    }

    /// Settles `epoch` with a tree of `leaves` (in this chain's token), debiting `amount`
    /// from the campaign.
    async fn settle_leaves(&self, epoch: u64, leaves: Vec<PayoutLeaf>, amount: U256) -> PayoutTree {
        let tree = PayoutTree::new(leaves).unwrap();
        AdEscrow::new(self.deployment.ad_escrow.address, self.wallet(1))
            .settle(
                epoch,
                tree.root(),
                vec![IAdEscrow::Debit {
                    campaignId: self.campaign,
                    amount,
                }],
                vec![IAdEscrow::TokenTotal {
                    token: self.token,
                    amount,
                }],
            )
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        tree
    }

    pub async fn mine(&self, blocks: u64) {
        self.wallet(0).anvil_mine(Some(blocks), None).await.unwrap();
    }
}

/// Steps until the follower has nothing left to do.
pub async fn sync(follower: &mut Follower) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..10_000 {
        match follower.step().await.unwrap() {
            Step::Idle => return steps,
            step => steps.push(step),
        }
    }
    panic!("the follower never caught up");
}

/// Compares the mirror with direct contract calls.
async fn assert_mirror_matches_chain(pool: &PgPool, chain: &Chain, users: &[Address], scopes: u64) {
    let provider = ProviderBuilder::new().connect_http(chain.anvil.endpoint_url());
    let escrow = AdEscrow::new(chain.deployment.ad_escrow.address, &provider);
    let registry = ConsentRegistry::new(chain.deployment.consent_registry.address, &provider);
    let chain_id = chain.anvil.chain_id() as i64;

    let remaining: String =
        sqlx::query_scalar("SELECT remaining::text FROM campaigns_view WHERE chain_id = $1 AND campaign_id = $2")
            .bind(chain_id)
            .bind(chain.campaign.as_slice())
            .fetch_one(pool)
            .await
            .unwrap();
    let on_chain = escrow.campaign(chain.campaign).call().await.unwrap();
    assert_eq!(remaining, on_chain.remaining.to_string(), "campaign remaining");

    let state = escrow.settlementState().call().await.unwrap();
    let live_epochs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM settlements_view WHERE chain_id = $1 AND status <> 'revoked'")
            .bind(chain_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(live_epochs as u64, state.lastEpoch, "settled epochs");

    for user in users {
        for i in 0..scopes {
            let scope = B256::from(U256::from(i));
            let expiry = registry.consentExpiry(*user, scope).call().await.unwrap();
            let mirrored: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT expiry FROM consent_view WHERE chain_id = $1 AND user_address = $2 AND scope = $3",
            )
            .bind(chain_id)
            .bind(user.as_slice())
            .bind(scope.as_slice())
            .fetch_optional(pool)
            .await
            .unwrap();
            assert_eq!(
                mirrored.flatten().unwrap_or(0) as u64,
                expiry,
                "consent of {user} for scope {i}"
            );
        }
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn backfill_then_head_following_matches_the_chain(pool: PgPool) {
    let chain = Chain::start().await;
    let users = [chain.anvil.addresses()[5], chain.anvil.addresses()[6]];
    // A few thousand events over many blocks, most of them below the finalized height.
    for round in 0..4 {
        chain.grant_many(5, 500, 4_000_000_000 + round).await;
        chain.grant_many(6, 500, 4_100_000_000 + round).await;
        chain.mine(20).await;
    }
    chain
        .settle(
            1,
            chain.anvil.addresses()[7],
            U256::from(1_000u64),
            U256::from(1_000u64),
        )
        .await;

    let mut follower = chain.follower(&pool, chain.anvil.endpoint_url(), 10);
    let steps = sync(&mut follower).await;
    assert!(steps.iter().any(|s| matches!(s, Step::Backfilled { .. })), "backfilled");
    assert!(
        steps.iter().any(|s| matches!(s, Step::Indexed { .. })),
        "followed the head"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 4_000, "every consent event, once");
    assert_mirror_matches_chain(&pool, &chain, &users, 500).await;

    // New blocks after catching up are followed one by one.
    chain.grant_many(5, 10, 4_200_000_000).await;
    chain
        .settle(
            2,
            chain.anvil.addresses()[7],
            U256::from(3_000u64),
            U256::from(2_000u64),
        )
        .await;
    sync(&mut follower).await;
    assert_mirror_matches_chain(&pool, &chain, &users, 500).await;

    // Replaying a range is harmless: a fresh follower on the same database changes nothing.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE chain_checkpoints SET indexed_block = indexed_block - 30")
        .execute(&pool)
        .await
        .unwrap();
    sync(&mut chain.follower(&pool, chain.anvil.endpoint_url(), 10)).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after, "no duplicates after a replay");

    // And the API answers from the mirror, saying which block it reflects.
    let app = TestApp::with(pool.clone(), |c| c.chain_id = chain.anvil.chain_id());
    let escrow = app.get(&format!("/v1/escrow/campaigns/{}", chain.campaign), None).await;
    assert_eq!(escrow.ok()["debited"], "3000");
    assert!(escrow.body["block"].as_i64().unwrap() > 0);
    assert_eq!(
        escrow.body["final"], false,
        "the latest settlement is within the finality depth"
    );
    let settlements = app.get("/v1/escrow/settlements", None).await;
    assert_eq!(settlements.ok().as_array().unwrap().len(), 2);
    let consent = app.get(&format!("/v1/consent/{}", users[0]), None).await;
    assert_eq!(consent.ok().as_array().unwrap().len(), 500);
    let status = app.get("/v1/chain/status", None).await;
    assert_eq!(status.ok()["lagBlocks"], 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_reorg_replaces_orphaned_settlement_and_consent(pool: PgPool) {
    let chain = Chain::start().await;
    let user = chain.anvil.addresses()[5];
    chain.grant_many(5, 3, 4_000_000_000).await;
    let mut follower = chain.follower(&pool, chain.anvil.endpoint_url(), 2);
    sync(&mut follower).await;

    // On the branch that will be orphaned: a settlement and a consent revocation.
    let snapshot = chain.wallet(0).anvil_snapshot().await.unwrap();
    chain
        .settle(1, chain.anvil.addresses()[7], U256::from(500u64), U256::from(500u64))
        .await;
    ConsentRegistry::new(chain.deployment.consent_registry.address, chain.wallet(5))
        .revoke(B256::from(U256::from(1u64)))
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    sync(&mut follower).await;
    let mirrored: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_settlements")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mirrored, 1, "the orphan-to-be is mirrored");

    // The canonical branch: other transactions at the same heights, and one block more.
    assert!(chain.wallet(0).anvil_revert(snapshot).await.unwrap());
    ConsentRegistry::new(chain.deployment.consent_registry.address, chain.wallet(5))
        .grant(B256::from(U256::from(2u64)), 4_300_000_000)
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    chain.mine(2).await;

    let steps = sync(&mut follower).await;
    assert!(
        steps.iter().any(|s| matches!(s, Step::RolledBack { .. })),
        "detected the reorg: {steps:?}"
    );
    let mirrored: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_settlements")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mirrored, 0, "the orphaned settlement is gone");
    assert_mirror_matches_chain(&pool, &chain, &[user], 3).await;
    let reorgs: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_blocks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(reorgs > 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_reorg_while_down_is_caught_at_start(pool: PgPool) {
    let chain = Chain::start().await;
    let user = chain.anvil.addresses()[5];
    chain.grant_many(5, 2, 4_000_000_000).await;
    sync(&mut chain.follower(&pool, chain.anvil.endpoint_url(), 2)).await;

    // While no indexer runs, the tip is rolled back and replaced by a different block.
    chain.wallet(0).anvil_rollback(Some(1)).await.unwrap();
    chain.grant_many(5, 2, 4_400_000_000).await;

    let steps = sync(&mut chain.follower(&pool, chain.anvil.endpoint_url(), 2)).await;
    assert!(matches!(steps.first(), Some(Step::RolledBack { .. })), "{steps:?}");
    assert_mirror_matches_chain(&pool, &chain, &[user], 2).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn killing_the_indexer_anywhere_loses_and_duplicates_nothing(pool: PgPool) {
    let chain = Chain::start().await;
    let users = [chain.anvil.addresses()[5]];
    for round in 0..6 {
        chain.grant_many(5, 50, 4_000_000_000 + round).await;
        chain.mine(3).await;
    }
    // Kill the running follower at many points, restarting each time.
    for kill_after_ms in [1u64, 3, 7, 11, 17, 23, 31, 47] {
        let follower = chain.follower(&pool, chain.anvil.endpoint_url(), 4);
        let task = tokio::spawn(follower.run(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        task.abort();
        let _ = task.await;
    }
    sync(&mut chain.follower(&pool, chain.anvil.endpoint_url(), 4)).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 300, "every event exactly once");
    assert_mirror_matches_chain(&pool, &chain, &users, 50).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_reorg_deeper_than_the_window_stops_the_indexer(pool: PgPool) {
    let chain = Chain::start().await;
    let mut follower = chain.follower(&pool, chain.anvil.endpoint_url(), 2);
    sync(&mut follower).await;

    let snapshot = chain.wallet(0).anvil_snapshot().await.unwrap();
    for _ in 0..70 {
        chain.grant_many(5, 1, 4_000_000_000).await;
    }
    sync(&mut follower).await;

    // Replace all 70 blocks: more than the 64-block window.
    assert!(chain.wallet(0).anvil_revert(snapshot).await.unwrap());
    chain.mine(71).await;
    let error = loop {
        match follower.step().await {
            Ok(Step::Idle) => panic!("the deep reorg went unnoticed"),
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert!(
        matches!(error, adescrow_indexer::follower::FollowError::DeepReorg { .. }),
        "{error}"
    );
    assert!(error.is_fatal());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn chain_reads_refuse_bad_input(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    // Before the indexer has run there is nothing to answer from.
    app.get("/v1/chain/status", None)
        .await
        .problem(axum::http::StatusCode::NOT_FOUND, "not-found");

    sqlx::query(
        "INSERT INTO chain_checkpoints (chain_id, indexed_block, finalized_block, head_block) VALUES (31337, 5, 3, 5)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let unprocessable = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    app.get("/v1/escrow/campaigns/0x1234", None)
        .await
        .problem(unprocessable, "invalid-field");
    app.get("/v1/escrow/claims/not-an-address", None)
        .await
        .problem(unprocessable, "invalid-field");
    app.get("/v1/consent/0x12", None)
        .await
        .problem(unprocessable, "invalid-field");
    let zero = app.get("/v1/escrow/settlements?limit=0", None).await;
    assert_eq!(zero.problem(unprocessable, "invalid-field")["field"], "limit");
    let text = app.get("/v1/escrow/settlements?limit=many", None).await;
    assert_eq!(text.problem(unprocessable, "invalid-field")["field"], "query");
    let unknown = app.get("/v1/escrow/settlements?page=2", None).await;
    unknown.problem(unprocessable, "invalid-field");
    app.get(&format!("/v1/escrow/campaigns/{}", B256::repeat_byte(7)), None)
        .await
        .problem(axum::http::StatusCode::NOT_FOUND, "not-found");
    assert_eq!(
        app.get("/v1/escrow/settlements", None)
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn anonymous_claims_are_named_by_their_index_and_rolled_back_on_a_reorg(pool: PgPool) {
    let chain = Chain::start().await;
    let chain_id = chain.anvil.chain_id() as i64;
    let (payee, stranger) = (chain.anvil.addresses()[7], chain.anvil.addresses()[8]);
    // Two payees sharing a claimed slot (indexes 4 and 5). This database assigned index 5
    // (as an epoch's build would); index 4 is not one of its own.
    sqlx::query("INSERT INTO payout_indexes (chain_id, leaf_index, account, token) VALUES ($1, 5, $2, $3)")
        .bind(chain_id)
        .bind(payee.as_slice())
        .bind(chain.token.as_slice())
        .execute(&pool)
        .await
        .unwrap();
    let leaf = |account, index, amount: u64| PayoutLeaf {
        account,
        token: chain.token,
        index,
        cumulative_amount: U256::from(amount),
    };
    let tree = chain
        .settle_leaves(
            1,
            vec![leaf(payee, 5, 700), leaf(stranger, 4, 300)],
            U256::from(1_000u64),
        )
        .await;
    let mut follower = chain.follower(&pool, chain.anvil.endpoint_url(), 2);
    sync(&mut follower).await;

    // On the branch that will be orphaned: both claim (sent by someone else).
    let snapshot = chain.wallet(0).anvil_snapshot().await.unwrap();
    let escrow = AdEscrow::new(chain.deployment.ad_escrow.address, chain.wallet(0));
    for (i, leaf) in tree.leaves().enumerate() {
        let receipt = escrow
            .claim(leaf.account, leaf.token, leaf.index_and_amount(), tree.proof(i))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        // The claim's own log: the escrow's, without topics, one word of index and amount.
        let logs: Vec<_> = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == chain.deployment.ad_escrow.address)
            .collect();
        assert_eq!(logs.len(), 1, "one escrow log per claim");
        assert!(logs[0].topics().is_empty(), "anonymous");
        assert_eq!(
            logs[0].data().data.as_ref(),
            leaf.index_and_amount().to_be_bytes::<32>()
        );
    }
    sync(&mut follower).await;

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT leaf_index::text, cumulative_amount::text FROM mirror_claims ORDER BY leaf_index")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![("4".into(), "300".into()), ("5".into(), "700".into())],
        "both claims, as the logs say"
    );
    // (account, token, cumulative amount)
    type Named = (Option<Vec<u8>>, Option<Vec<u8>>, String);
    let named: Vec<Named> = sqlx::query_as(
        "SELECT account, token, cumulative_amount::text FROM claims_view WHERE chain_id = $1 ORDER BY leaf_index",
    )
    .bind(chain_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        named,
        vec![
            (None, None, "300".into()),
            (Some(payee.to_vec()), Some(chain.token.to_vec()), "700".into())
        ],
        "the index names the payee; an unknown index stays unnamed"
    );
    let app = TestApp::with(pool.clone(), |c| c.chain_id = chain.anvil.chain_id());
    let claims = app.get(&format!("/v1/escrow/claims/{payee}"), None).await;
    let claims = claims.ok();
    assert_eq!(claims.as_array().unwrap().len(), 1, "{claims}");
    assert_eq!(claims[0]["claimed"], "700");
    assert_eq!(
        claims[0]["token"].as_str().unwrap().parse::<Address>().unwrap(),
        chain.token
    );
    let unknown = app.get(&format!("/v1/escrow/claims/{stranger}"), None).await;
    assert_eq!(unknown.ok().as_array().unwrap().len(), 0, "not this database's payee");

    // The canonical branch has no claims: the mirror drops them with the orphaned blocks.
    assert!(chain.wallet(0).anvil_revert(snapshot).await.unwrap());
    chain.mine(4).await;
    let steps = sync(&mut follower).await;
    assert!(
        steps.iter().any(|s| matches!(s, Step::RolledBack { .. })),
        "detected the reorg: {steps:?}"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_claims")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the orphaned claims are gone");
    let claims = app.get(&format!("/v1/escrow/claims/{payee}"), None).await;
    assert_eq!(claims.ok().as_array().unwrap().len(), 0);
    assert_eq!(
        escrow.claimed(U256::from(5u64)).call().await.unwrap(),
        U256::ZERO,
        "and the chain agrees"
    );
}
