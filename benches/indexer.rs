//! The chain mirror's two figures, against a local anvil and a real Postgres:
//!
//! - **Backfill throughput**: a chain holding 200,000 `ConsentGranted` events (spread over
//!   10,000 blocks) is mirrored from scratch into a fresh database; events per second until
//!   the follower has caught up.
//! - **Head-following latency**: with the follower running, blocks are mined one at a time,
//!   each carrying one consent event; the time from the mining call's return to the event's
//!   row being visible in Postgres.
//!
//! ```text
//! forge build   # the events come from contracts/test/utils/ConsentBatcher.sol
//! cargo bench --bench indexer
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is only used to
//! create and finally drop the database `adescrow_bench_indexer`. Prints one line per figure
//! with its target, and exits non-zero when a figure misses it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use adescrow::contracts::ConsentRegistry;
use adescrow::platform::db::MIGRATOR;
use adescrow::platform::deploy::{DeployArgs, Deployment, deploy};
use adescrow_chain::rpc::ChainRpc;
use adescrow_indexer::events::Contracts;
use adescrow_indexer::follower::{Follower, FollowerConfig, Step};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::node_bindings::Anvil;
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use url::Url;

alloy::sol! {
    #[sol(rpc)]
    interface IConsentBatcher {
        function grantMany(address registry, uint256 start, uint256 count, uint64 expiry) external;
    }
}

/// Events per batch transaction: at most about 25k gas each (a new scope; 9k to extend one),
/// so one batch fits a 30M gas block.
const EVENTS_PER_TX: u64 = 1_000;
/// Batch transactions, one per block: `EVENTS_PER_TX * BATCHES` events in all.
const BATCHES: u64 = 200;
/// Empty blocks mined after each batch, so that the events spread over many blocks.
const GAP_BLOCKS: u64 = 49;
const BATCH_GAS: u64 = 29_000_000;
/// Backfill: everything but the head block is in the backfill zone.
const BACKFILL_FINALITY: u64 = 1;
const MAX_RANGE: u64 = 2_000;
/// Head following.
const HEAD_BLOCKS: usize = 50;
const HEAD_FINALITY: u64 = 2;
const POLL_INTERVAL: Duration = Duration::from_millis(10);

const EXPIRY: u64 = 4_000_000_000;
/// The bench database (also spelled out in the SQL that creates and drops it).
const DATABASE: &str = "adescrow_bench_indexer";

const TARGET_EVENTS_PER_SEC: f64 = 20_000.0;
const TARGET_MEDIAN_MS: f64 = 100.0;

struct Chain {
    anvil: alloy::node_bindings::AnvilInstance,
    deployment: Deployment,
}

impl Chain {
    fn wallet(&self, index: usize) -> DynProvider {
        let signer = PrivateKeySigner::from(self.anvil.keys()[index].clone());
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }

    fn follower(&self, pool: &PgPool, finality_depth: u64) -> Follower {
        let contracts = Contracts {
            escrow: self.deployment.ad_escrow.address,
            consent: self.deployment.consent_registry.address,
        };
        let start = self
            .deployment
            .ad_escrow
            .block
            .min(self.deployment.consent_registry.block);
        let mut config = FollowerConfig::new(contracts, start);
        config.finality_depth = finality_depth;
        config.max_range = MAX_RANGE;
        config.poll_interval = POLL_INTERVAL;
        let rpc = ChainRpc::new(
            self.anvil.endpoint_url(),
            self.anvil.chain_id(),
            Duration::from_secs(60),
        )
        .role("indexer");
        Follower::new(rpc, pool.clone(), config)
    }
}

/// The creation code of the batcher, from forge's build output.
fn batcher_code() -> anyhow::Result<Bytes> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/out/ConsentBatcher.sol/ConsentBatcher.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: run `forge build` first (after `source scripts/lib.sh && \
             require_node_toolchain`, which puts the native forge on PATH and sets FOUNDRY_SOLC)",
            path.display()
        )
    })?;
    let artifact: serde_json::Value = serde_json::from_str(&text)?;
    let code = artifact["bytecode"]["object"]
        .as_str()
        .with_context(|| format!("no bytecode.object in {}", path.display()))?;
    Ok(hex::decode(code.trim_start_matches("0x"))?.into())
}

/// Fills the chain with `EVENTS_PER_TX * BATCHES` consent events; returns how many.
async fn fill(chain: &Chain) -> anyhow::Result<u64> {
    let wallet = chain.wallet(4);
    let sender = chain.anvil.addresses()[4];
    let receipt = wallet
        .send_transaction(TransactionRequest::default().with_deploy_code(batcher_code()?))
        .await?
        .get_receipt()
        .await?;
    let batcher = match (receipt.status(), receipt.contract_address) {
        (true, Some(address)) => IConsentBatcher::new(address, &wallet),
        _ => bail!("deploying ConsentBatcher failed"),
    };

    // Mined explicitly: each batch fills most of a block, followed by empty blocks.
    wallet.anvil_set_auto_mine(false).await?;
    let nonce = wallet.get_transaction_count(sender).await?;
    let mut hashes = Vec::new();
    for i in 0..BATCHES {
        // The same scopes every time, each batch extending them: anvil recomputes its state
        // root over the whole state at every block, so 200,000 new storage slots would make
        // mining crawl.
        let pending = batcher
            .grantMany(
                chain.deployment.consent_registry.address,
                U256::ZERO,
                U256::from(EVENTS_PER_TX),
                EXPIRY + i,
            )
            .nonce(nonce + i)
            .gas(BATCH_GAS)
            .max_fee_per_gas(100_000_000_000)
            .max_priority_fee_per_gas(1)
            .send()
            .await?;
        hashes.push(*pending.tx_hash());
        wallet.anvil_mine(Some(1 + GAP_BLOCKS), None).await?;
    }
    wallet.anvil_set_auto_mine(true).await?;

    let mut gas = 0;
    for hash in hashes {
        let receipt = wallet
            .get_transaction_receipt(hash)
            .await?
            .context("a batch was not mined")?;
        ensure!(receipt.status(), "batch {hash} reverted");
        ensure!(
            receipt.inner.logs().len() as u64 == EVENTS_PER_TX,
            "batch {hash}: wrong event count"
        );
        gas = gas.max(receipt.gas_used);
    }
    ensure!(gas < BATCH_GAS, "batches run out of gas");
    Ok(EVENTS_PER_TX * BATCHES)
}

/// Creates the bench database afresh, migrated; returns its URL.
async fn create_database(admin_url: &str) -> anyhow::Result<Url> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("cannot connect to Postgres (is it running, and is DATABASE_URL right?)")?;
    sqlx::query("DROP DATABASE IF EXISTS adescrow_bench_indexer WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    sqlx::query("CREATE DATABASE adescrow_bench_indexer")
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let mut url = Url::parse(admin_url)?;
    url.set_path(DATABASE);
    Ok(url)
}

async fn drop_database(admin_url: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query("DROP DATABASE IF EXISTS adescrow_bench_indexer WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    Ok(())
}

struct Backfill {
    events: i64,
    blocks: u64,
    steps: usize,
    took: Duration,
    /// The same `eth_getLogs` ranges fetched again, alone, for where the time goes.
    logs_alone: Duration,
}

async fn backfill(chain: &Chain, pool: &PgPool, expected: u64) -> anyhow::Result<Backfill> {
    let mut follower = chain.follower(pool, BACKFILL_FINALITY);
    let mut ranges = Vec::new();
    let started = Instant::now();
    loop {
        match follower.step().await? {
            Step::Idle => break,
            Step::Backfilled { from, to, .. } => ranges.push((from, to)),
            Step::ShrankRange { range } => bail!("the provider refused a range; shrank to {range}"),
            Step::Indexed { .. } => {}
            Step::RolledBack { .. } => bail!("unexpected reorg"),
        }
    }
    let took = started.elapsed();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_consent_events")
        .fetch_one(pool)
        .await?;
    ensure!(
        events as u64 == expected,
        "mirrored {events} events, expected {expected}"
    );
    let blocks: i64 = sqlx::query_scalar("SELECT indexed_block FROM chain_checkpoints")
        .fetch_one(pool)
        .await?;

    let rpc = ChainRpc::new(
        chain.anvil.endpoint_url(),
        chain.anvil.chain_id(),
        Duration::from_secs(60),
    );
    let filter = Filter::new().address(vec![
        chain.deployment.ad_escrow.address,
        chain.deployment.consent_registry.address,
    ]);
    let started = Instant::now();
    for &(from, to) in &ranges {
        rpc.logs(&filter.clone().from_block(from).to_block(to)).await?;
    }
    Ok(Backfill {
        events,
        blocks: blocks as u64,
        steps: ranges.len(),
        took,
        logs_alone: started.elapsed(),
    })
}

/// Milliseconds from each mined block to its row in Postgres, sorted.
async fn head_latencies(chain: &Chain, pool: &PgPool, db_url: &Url) -> anyhow::Result<Vec<f64>> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(chain.follower(pool, HEAD_FINALITY).run(async {
        let _ = stopped.await;
    }));
    let chain_id = chain.anvil.chain_id() as i64;
    let mut db = PgConnection::connect(db_url.as_str()).await?;
    let wallet = chain.wallet(5);
    let user = chain.anvil.addresses()[5];
    let registry = ConsentRegistry::new(chain.deployment.consent_registry.address, &wallet);

    // Caught up first.
    let head = wallet.get_block_number().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let indexed: Option<i64> = sqlx::query_scalar("SELECT indexed_block FROM chain_checkpoints")
            .fetch_optional(&mut db)
            .await?;
        if indexed.is_some_and(|b| b as u64 >= head) {
            break;
        }
        ensure!(Instant::now() < deadline, "the follower did not catch up with the head");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    wallet.anvil_set_auto_mine(false).await?;
    let nonce = wallet.get_transaction_count(user).await?;
    let mut latencies = Vec::with_capacity(HEAD_BLOCKS);
    let mut block = head;
    for i in 0..HEAD_BLOCKS {
        // Mining at every phase of the follower's poll interval.
        tokio::time::sleep(Duration::from_millis((i as u64 * 3) % 11)).await;
        let _pending = registry
            .grant(B256::from(U256::from(1_000_000_000 + i as u64)), EXPIRY)
            .nonce(nonce + i as u64)
            .gas(100_000)
            .max_fee_per_gas(100_000_000_000)
            .max_priority_fee_per_gas(1)
            .send()
            .await?;
        wallet.anvil_mine(Some(1), None).await?;
        let mined = Instant::now();
        block += 1;
        loop {
            let seen: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM mirror_consent_events
                                WHERE chain_id = $1 AND block_number = $2 AND user_address = $3)",
            )
            .bind(chain_id)
            .bind(block as i64)
            .bind(user.as_slice())
            .fetch_one(&mut db)
            .await?;
            if seen {
                break;
            }
            ensure!(
                mined.elapsed() < Duration::from_secs(30),
                "block {block} was never mirrored"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(mined.elapsed().as_secs_f64() * 1e3);
    }
    wallet.anvil_set_auto_mine(true).await?;

    let _ = stop.send(());
    task.await??;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(db_url: &Url) -> anyhow::Result<bool> {
    // No historical states: anvil would otherwise snapshot its growing state at every block.
    let anvil = Anvil::at(support::foundry::anvil()).arg("--prune-history").spawn();
    let deployment = deploy(&DeployArgs {
        rpc_url: anvil.endpoint_url(),
        deployer_key: PrivateKeySigner::from(anvil.keys()[0].clone()),
        admin: None,
        settler: None,
        guardian: None,
        grace_period: Duration::from_secs(86_400),
        challenge_window: Duration::ZERO,
        test_token: false,
        out: PathBuf::new(),
    })
    .await?;
    let chain = Chain { anvil, deployment };

    let filling = Instant::now();
    let expected = fill(&chain).await?;
    let filled_in = filling.elapsed();

    let pool = PgPoolOptions::new().max_connections(4).connect(db_url.as_str()).await?;
    MIGRATOR.run(&pool).await?;
    let backfill = backfill(&chain, &pool, expected).await?;
    let latencies = head_latencies(&chain, &pool, db_url).await?;
    pool.close().await;

    let rate = backfill.events as f64 / backfill.took.as_secs_f64();
    let (median, p90) = (percentile(&latencies, 50.0), percentile(&latencies, 90.0));
    let rate_ok = rate >= TARGET_EVENTS_PER_SEC;
    let median_ok = median <= TARGET_MEDIAN_MS;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    #[allow(clippy::print_stdout)]
    {
        println!(
            "indexer (anvil + Postgres; {} events in {} blocks, made in {:.1} s)",
            backfill.events,
            backfill.blocks,
            filled_in.as_secs_f64()
        );
        println!(
            "  backfill throughput        {rate:>9.0} events/s   target >= {TARGET_EVENTS_PER_SEC:.0}   {}",
            verdict(rate_ok)
        );
        println!(
            "    {} events in {:.2} s, {} ranges of <= {MAX_RANGE} blocks; eth_getLogs of those ranges alone: {:.2} s",
            backfill.events,
            backfill.took.as_secs_f64(),
            backfill.steps,
            backfill.logs_alone.as_secs_f64()
        );
        println!(
            "  head latency, median       {median:>9.1} ms         target <= {TARGET_MEDIAN_MS:.0}   {}",
            verdict(median_ok)
        );
        println!("  head latency, p90          {p90:>9.1} ms");
        println!(
            "    {HEAD_BLOCKS} blocks mined one at a time; poll interval {} ms, finality depth {HEAD_FINALITY}; \
             min {:.1} ms, max {:.1} ms",
            POLL_INTERVAL.as_millis(),
            latencies[0],
            latencies[latencies.len() - 1]
        );
    }
    Ok(rate_ok && median_ok)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db_url = create_database(&admin_url).await?;
    let result = run(&db_url).await;
    let dropped = drop_database(&admin_url).await;
    let met = result?;
    dropped?;
    if !met {
        bail!("a figure missed its target");
    }
    Ok(())
}
