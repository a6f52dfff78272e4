//! `adescrow deploy`: deploys the contracts with alloy from the committed artifacts, grants
//! the settler and guardian roles, and writes a deployment file (addresses and deployment
//! blocks) that every role of the service reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::primitives::aliases::U40;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::contracts::{AdEscrow, ConsentRegistry, TestToken};

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// JSON-RPC URL of the chain to deploy to.
    #[arg(long, env = "ADESCROW_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: Url,
    /// Private key (hex) that pays for and sends the deployment.
    #[arg(long, env = "ADESCROW_DEPLOYER_KEY", hide_env_values = true)]
    pub deployer_key: PrivateKeySigner,
    /// Admin of the escrow (sets the challenge window, manages roles). Defaults to the deployer.
    #[arg(long, env = "ADESCROW_ADMIN")]
    pub admin: Option<Address>,
    /// Address allowed to post settlements (the relayer's key).
    #[arg(long, env = "ADESCROW_SETTLER")]
    pub settler: Option<Address>,
    /// Address allowed to pause and to revoke pending settlements.
    #[arg(long, env = "ADESCROW_GUARDIAN")]
    pub guardian: Option<Address>,
    /// Time after a campaign's end during which its last impressions can still be settled.
    #[arg(long, env = "ADESCROW_GRACE_PERIOD", default_value = "1d", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,
    /// How long a new payout root waits before claims use it (0 on a devnet).
    #[arg(long, env = "ADESCROW_CHALLENGE_WINDOW", default_value = "1h", value_parser = humantime::parse_duration)]
    pub challenge_window: Duration,
    /// Also deploy the 6-decimal TestToken (devnets only: anyone can mint it).
    #[arg(long, env = "ADESCROW_DEPLOY_TEST_TOKEN")]
    pub test_token: bool,
    /// Where to write the deployment file.
    #[arg(long, env = "ADESCROW_DEPLOYMENT", default_value = "deployments/local.json")]
    pub out: PathBuf,
}

/// A deployed contract and the block it was created in (where the indexer starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub address: Address,
    pub block: u64,
}

/// The deployment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub chain_id: u64,
    pub ad_escrow: Deployed,
    pub consent_registry: Deployed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_token: Option<Deployed>,
    /// The escrow's grace period in seconds: campaigns can be withdrawn at end + this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("RPC error: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    #[error("transaction failed: {0}")]
    Receipt(#[from] alloy::providers::PendingTransactionError),
    #[error("{what} transaction {tx} reverted")]
    Reverted {
        what: &'static str,
        tx: alloy::primitives::TxHash,
    },
    #[error("{0} is too long for the contract (at most 2^40 - 1 seconds)")]
    DurationTooLong(&'static str),
    #[error("cannot grant roles: the admin is {admin}, not the deployer {deployer}; grant them from the admin")]
    NotAdmin { admin: Address, deployer: Address },
    #[error("cannot read or write the deployment file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("deployment file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("deployment file {path} is for chain {file}, but the RPC serves chain {rpc}")]
    WrongChain { path: PathBuf, file: u64, rpc: u64 },
}

impl Deployment {
    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, DeployError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeployError::File {
            path: path.into(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DeployError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Fails unless the deployment is for `chain_id`, so that a file from another chain is
    /// caught before any address in it is used.
    pub fn expect_chain(&self, path: &Path, chain_id: u64) -> Result<(), DeployError> {
        if self.chain_id == chain_id {
            Ok(())
        } else {
            Err(DeployError::WrongChain {
                path: path.into(),
                file: self.chain_id,
                rpc: chain_id,
            })
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), DeployError> {
        let io = |source| DeployError::File {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|error| io(error.into()))?;
        std::fs::write(path, text + "\n").map_err(io)
    }
}

fn seconds(duration: Duration, what: &'static str) -> Result<U40, DeployError> {
    U40::try_from(duration.as_secs()).map_err(|_| DeployError::DurationTooLong(what))
}

/// Deploys everything and grants roles; does not write the file.
pub async fn deploy(args: &DeployArgs) -> Result<Deployment, DeployError> {
    let deployer = args.deployer_key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(args.deployer_key.clone()))
        .connect_http(args.rpc_url.clone());
    let chain_id = provider.get_chain_id().await?;
    let admin = args.admin.unwrap_or(deployer);
    // Checked before spending anything: only the admin can grant roles.
    let roles = [(args.settler, "settler"), (args.guardian, "guardian")];
    if roles.iter().any(|(who, _)| who.is_some()) && admin != deployer {
        return Err(DeployError::NotAdmin { admin, deployer });
    }
    let grace = seconds(args.grace_period, "the grace period")?;
    let window = seconds(args.challenge_window, "the challenge window")?;

    tracing::info!(chain_id, %deployer, "deploying AdEscrow");
    let receipt = AdEscrow::deploy_builder(&provider, admin, grace, window)
        .send()
        .await?
        .get_receipt()
        .await?;
    let ad_escrow = deployed("AdEscrow", &receipt)?;

    tracing::info!("deploying ConsentRegistry");
    let receipt = ConsentRegistry::deploy_builder(&provider)
        .send()
        .await?
        .get_receipt()
        .await?;
    let consent_registry = deployed("ConsentRegistry", &receipt)?;

    let test_token = if args.test_token {
        tracing::info!("deploying TestToken");
        let receipt = TestToken::deploy_builder(&provider, "Test USD".into(), "tUSD".into())
            .send()
            .await?
            .get_receipt()
            .await?;
        Some(deployed("TestToken", &receipt)?)
    } else {
        None
    };

    let escrow = AdEscrow::new(ad_escrow.address, &provider);
    for (who, name) in roles {
        let Some(who) = who else { continue };
        let role = match name {
            "settler" => escrow.SETTLER_ROLE().call().await?,
            _ => escrow.GUARDIAN_ROLE().call().await?,
        };
        tracing::info!(%who, role = name, "granting role");
        let receipt = escrow.grantRole(role, who).send().await?.get_receipt().await?;
        if !receipt.status() {
            return Err(DeployError::Reverted {
                what: "grantRole",
                tx: receipt.transaction_hash,
            });
        }
    }
    Ok(Deployment {
        chain_id,
        ad_escrow,
        consent_registry,
        test_token,
        grace_period: Some(args.grace_period.as_secs()),
    })
}

fn deployed(what: &'static str, receipt: &alloy::rpc::types::TransactionReceipt) -> Result<Deployed, DeployError> {
    match (receipt.status(), receipt.contract_address, receipt.block_number) {
        (true, Some(address), Some(block)) => {
            tracing::info!(contract = what, %address, block, "deployed");
            Ok(Deployed { address, block })
        }
        _ => Err(DeployError::Reverted {
            what,
            tx: receipt.transaction_hash,
        }),
    }
}
