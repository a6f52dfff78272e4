//! The settlement relayer against a real anvil and real Postgres: the whole path from the
//! ledger to a claim on chain, and the faults it must survive (a relayer killed between any
//! two steps, a stuck transaction, a reorg, an RPC outage, two relayers at once). The
//! reference is always the chain itself.

use std::collections::BTreeMap;
use std::time::Duration;

use adescrow::contracts::{AdEscrow, ConsentGrant, ConsentRegistry, TestToken, consent_domain};
use adescrow::money::Amount;
use adescrow::money::ledger::{self, Party as Role, Posting, Source};
use adescrow::platform::db::MIGRATOR;
use adescrow::platform::leader::Leader;
use adescrow::platform::outbox::OutboxConfig;
use adescrow::settlement::relayer::{EpochPolicy, Relayer, RelayerConfig};
use adescrow_chain::rpc::ChainRpc;
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

mod claims;
mod consent;
mod escrows;
mod faults;
mod growth;
mod indexes;
mod market;
mod outbox;
mod promos;
mod resellers;
mod statements;

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
            ChainRpc::new(url, CHAIN_ID, Duration::from_secs(5)).role("relayer"),
            EthereumWallet::new(settler),
            config,
        )
    }

    fn relayer(&self, confirmations: u64) -> Relayer {
        self.relayer_at(self.chain.anvil.endpoint_url(), confirmations, Duration::from_secs(600))
    }

    /// Posts spend of the campaign to the ledger, earned by `payees`, as billing would.
    async fn owe(&self, source: &str, payees: &[(Address, u128)]) {
        self.owe_in(self.chain.token, self.campaign, source, payees).await;
    }

    /// Posts spend of `campaign`, in `token`, earned by `payees`.
    async fn owe_in(&self, token: Address, campaign: Uuid, source: &str, payees: &[(Address, u128)]) {
        let mut posting = Posting::default();
        posting.spend(campaign, Amount(payees.iter().map(|(_, a)| a).sum()));
        for (payee, amount) in payees {
            posting.earn(Role::Hoster, *payee, Amount(*amount));
        }
        let mut conn = self.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        ledger::post(
            &mut tx,
            CHAIN_ID,
            Source::Adjustment,
            source,
            &BTreeMap::from([(token, posting)]),
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

    /// Sets the escrow's challenge window for later settlements (the deployer is its admin).
    async fn set_challenge_window(&self, seconds: u64) {
        AdEscrow::new(self.chain.deployment.ad_escrow.address, self.chain.wallet(0))
            .setChallengeWindow(alloy::primitives::aliases::U40::from(seconds))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
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

    /// `Settled` events on the canonical chain, in order.
    async fn settled_logs(&self) -> Vec<AdEscrow::Settled> {
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
        logs.iter()
            .map(|log| AdEscrow::Settled::decode_log_data(log.data()).unwrap())
            .collect()
    }

    /// `Settled` events on the canonical chain, per epoch.
    async fn settled_events(&self) -> BTreeMap<u64, usize> {
        let mut epochs = BTreeMap::new();
        for settled in self.settled_logs().await {
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
        let settled: U256 = self
            .settled_logs()
            .await
            .iter()
            .flat_map(|settled| settled.totals.iter())
            .filter(|total| total.token == self.chain.token)
            .map(|total| total.amount)
            .sum();
        assert_eq!(settled, U256::from(spent), "settled on chain = spent in the ledger");
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

/// Anvil account `index` (which holds the test token) signed in as an advertiser with a
/// brand.
async fn chain_advertiser(world: &World, app: &TestApp, index: usize) -> Advertiser {
    let wallet = PrivateKeySigner::from(world.chain.anvil.keys()[index].clone());
    let token = app.token_with_role(&wallet, "advertiser").await;
    let brand = app
        .post(
            "/v1/brands",
            Some(&token),
            json!({ "name": "Acme", "dailyBudget": "1000000000", "monthlyBudget": "1000000000", "timeZone": "UTC" }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Advertiser { wallet, token, brand }
}

/// A campaign of `advertiser` (anvil account `index`) at 1,000 an impression, under the
/// escrow id `keccak256(name)`, opened on chain with `amount`. Returns its id and escrow id.
async fn open_campaign(
    world: &World,
    app: &TestApp,
    advertiser: &Advertiser,
    index: usize,
    name: &str,
    amount: u64,
) -> (String, B256) {
    let escrow_id = keccak256(name);
    let (campaign, _) = advertiser
        .campaign(
            app,
            json!({ "token": world.chain.token, "chainCampaignId": escrow_id }),
            json!({ "cpm": "1000000" }),
        )
        .await;
    AdEscrow::new(world.chain.deployment.ad_escrow.address, world.chain.wallet(index))
        .openCampaign(
            escrow_id,
            world.chain.token,
            U256::from(amount),
            alloy::primitives::aliases::U40::from(4_000_000_000u64),
        )
        .send()
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    (campaign["id"].as_str().unwrap().to_owned(), escrow_id)
}

/// One campaign served and billed for real through `app`: a hoster node and a witness node
/// (of `witness_owner`) registered with proofs of possession, the campaign running and the
/// only one serving, and witnessed batches of impressions signed by both.
struct Serving {
    node: crate::fixtures::Node,
    witness: crate::fixtures::Node,
    session: String,
    sequence: u64,
}

impl Serving {
    async fn start(world: &World, app: &TestApp, campaign: &str, witness_owner: &PrivateKeySigner) -> Serving {
        use crate::fixtures::{node_token, tick};
        let hoster = PrivateKeySigner::random();
        let hoster_token = app.token(&hoster).await;
        let node = growth::register_node(app, &hoster, &hoster_token, false).await;
        let witness_token = app.token(witness_owner).await;
        let witness = growth::register_node(app, witness_owner, &witness_token, true).await;
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(tick(&world.pool, campaign, &at).await, "RUNNING");
        sqlx::query("UPDATE campaigns SET status = 'paused' WHERE id <> $1::uuid")
            .bind(campaign)
            .execute(&world.pool)
            .await
            .unwrap();
        app.state.ad_server.refresh().await.unwrap();
        let session = node_token(app, &node).await;
        Serving {
            node,
            witness,
            session,
            sequence: 0,
        }
    }

    /// Decides and reports `n` impressions in one batch; returns how many were billed.
    async fn bill(&mut self, world: &World, app: &TestApp, n: usize) -> u64 {
        let mut receipts = Vec::new();
        for _ in 0..n {
            let decision = crate::fixtures::decide(app, &self.session, json!({ "placement": "feed-top-banner" })).await;
            let ticket = decision["ads"][0]["ticket"].as_str().expect("an ad").to_owned();
            let at = time::OffsetDateTime::now_utc().unix_timestamp();
            receipts.push(crate::receipts::receipt(&ticket, "impression", at, None));
        }
        self.sequence += 1;
        let escrow = world.chain.deployment.ad_escrow.address;
        let batch = crate::receipts::signed_under(
            CHAIN_ID,
            escrow,
            &self.node.key,
            Some(&self.witness.key),
            self.sequence,
            &receipts,
        );
        app.post("/v1/receipts", None, batch).await.ok()["billed"]
            .as_u64()
            .unwrap()
    }
}

async fn shutdown(mut stopped: watch::Receiver<()>) {
    let _ = stopped.changed().await;
}
