//! The first step: find the devnet and check that its parts agree (the API is ready, the
//! RPC serves the deployment's chain, the contracts and the test token are there, the
//! indexer follows), and gather what every later step needs.

use std::time::Duration;

use alloy::primitives::{Address, keccak256};
use alloy::providers::Provider;
use rand::Rng;
use reqwest::Method;

use super::DemoConfig;
use super::api::Api;
use super::economics::Economics;
use super::error::{Failure, Result};
use super::report::{Probe, Report, wait_for};
use super::wallet::Chain;
use crate::contracts::{AdEscrow, TestToken};
use crate::platform::deploy::Deployment;

/// The devnet as the demo found it, and the names of this run.
#[derive(Debug)]
pub struct Devnet {
    pub api: Api,
    pub chain: Chain,
    pub chain_id: u64,
    pub deployment: Deployment,
    /// The test token campaigns pay in.
    pub token: Address,
    pub decimals: u8,
    pub symbol: String,
    /// Whether the chain is anvil, whose clock the demo may advance.
    pub anvil: bool,
    /// The escrow's grace period, seconds.
    pub grace_period: u64,
    /// This run's tag: its region and consent scope, so runs never see each other's ads.
    pub run: String,
    pub economics: Economics,
    pub wait_timeout: Duration,
    pub max_grace_wait: Duration,
}

/// How often waiting steps look again.
pub const POLL: Duration = Duration::from_millis(250);

impl Devnet {
    /// The consent scope this run's campaign requires.
    pub fn consent_scope(&self) -> alloy::primitives::B256 {
        keccak256(format!("adescrow demo {}", self.run))
    }

    /// An amount as `1.5 tUSD (1500000 units)`.
    pub fn units(&self, amount: u128) -> String {
        let scale = 10u128.pow(u32::from(self.decimals));
        let fraction = format!("{:0width$}", amount % scale, width = usize::from(self.decimals));
        let fraction = fraction.trim_end_matches('0');
        let whole = amount / scale;
        let number = if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        };
        format!("{number} {} ({amount} units)", self.symbol)
    }
}

pub async fn check(config: &DemoConfig, report: &mut Report<'_>) -> Result<Devnet> {
    let api = Api::new(&config.api_url);
    let chain = Chain::new(config.rpc_url.clone());
    let deployment = config.deployment.clone();

    api.get("/healthz", None).await?;
    wait_for(report, "the API to be ready", config.wait_timeout, POLL, async || {
        let reply = api.send(Method::GET, "/readyz", None, None).await?;
        Ok(if reply.status.is_success() {
            Probe::Ready(())
        } else {
            Probe::Waiting(reply.body.to_string())
        })
    })
    .await?;
    report.ok(format_args!("API ready at {}", config.api_url));

    let chain_id = chain.reader.get_chain_id().await?;
    Failure::expect_eq(
        "chain id of the RPC vs the deployment file",
        deployment.chain_id,
        chain_id,
    )?;
    let challenge = api.get("/v1/auth/nonce", None).await?;
    Failure::expect_eq(
        "chain id the API signs in on",
        serde_json::json!(chain_id),
        challenge["chainId"].clone(),
    )?;
    let escrow = deployment.ad_escrow.address;
    let code = chain.reader.get_code_at(escrow).await?;
    if code.is_empty() {
        return Err(Failure::Setup(format!(
            "no contract at the escrow address {escrow}: the deployment file is from an older chain \
             (start the devnet with `scripts/dev --fresh`)"
        )));
    }
    let token = deployment.test_token.map(|t| t.address).ok_or_else(|| {
        Failure::Setup("the deployment has no test token; deploy with --test-token (scripts/dev does)".into())
    })?;
    let erc20 = TestToken::new(token, chain.reader.clone());
    let (decimals, symbol) = (erc20.decimals().call().await?, erc20.symbol().call().await?);
    let grace_period: u64 = AdEscrow::new(escrow, chain.reader.clone())
        .gracePeriod()
        .call()
        .await?
        .to();
    let client = chain.reader.get_client_version().await?;
    let anvil = client.to_ascii_lowercase().starts_with("anvil");
    report.ok(format_args!(
        "chain {chain_id} ({client}), escrow {escrow}, token {symbol} {token}"
    ));

    let indexed = wait_for(
        report,
        "the indexer to reach the head",
        config.wait_timeout,
        POLL,
        async || {
            let head = chain.reader.get_block_number().await?;
            let reply = api.send(Method::GET, "/v1/chain/status", None, None).await?;
            let indexed = reply.body["indexedBlock"].as_u64();
            Ok(match indexed {
                Some(indexed) if reply.status.is_success() && indexed >= head => Probe::Ready(indexed),
                _ => Probe::Waiting(format!("indexed {indexed:?} of head {head}")),
            })
        },
    )
    .await?;
    report.ok(format_args!("indexer caught up at block {indexed}"));

    let run = format!("demo-{:08x}", rand::rng().random::<u32>());
    report.info(format_args!("this run is tagged {run}; grace period {grace_period}s"));
    Ok(Devnet {
        api,
        chain,
        chain_id,
        deployment,
        token,
        decimals,
        symbol,
        anvil,
        grace_period,
        run,
        economics: config.economics.clone(),
        wait_timeout: config.wait_timeout,
        max_grace_wait: config.max_grace_wait,
    })
}
