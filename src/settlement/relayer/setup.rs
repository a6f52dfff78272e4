//! `adescrow relayer` (and `serve --with-relayer`): the signing keys, the deployment file
//! and the RPC endpoint, checked and wired into a [`Relayer`] and, with a treasury key, a
//! [`Treasury`].

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use sqlx::PgPool;
use url::Url;

use adescrow_chain::rpc::ChainRpc;

use super::{EpochPolicy, Relayer, RelayerConfig};
use crate::money::treasury::{Treasury, TreasuryConfig};
use crate::platform::config::RelayerArgs;
use crate::platform::deploy::Deployment;
use crate::platform::outbox::{Outbox, OutboxConfig};
use crate::platform::worker::Supervisor;

/// How long the relayer waits for each RPC call.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The key from configuration: a raw key or a keystore file. Any other `TxSigner` (a KMS)
/// can stand in for it, since the relayer only sees an `EthereumWallet`.
pub fn signer(args: &RelayerArgs) -> anyhow::Result<PrivateKeySigner> {
    match (&args.relayer_key, &args.relayer_keystore) {
        (Some(key), _) => Ok(key.clone()),
        (None, Some(path)) => {
            let password = args
                .relayer_keystore_password
                .as_deref()
                .context("ADESCROW_RELAYER_KEYSTORE_PASSWORD is needed to open the keystore")?;
            PrivateKeySigner::decrypt_keystore(path, password)
                .with_context(|| format!("cannot open the keystore {}", path.display()))
        }
        (None, None) => bail!("the relayer needs a key: set ADESCROW_RELAYER_KEY or ADESCROW_RELAYER_KEYSTORE"),
    }
}

/// The roles that send transactions: the relayer, and the treasury when a treasury key is
/// configured.
#[derive(Debug)]
pub struct Senders {
    pub relayer: Relayer,
    pub treasury: Option<Treasury>,
}

impl Senders {
    /// Builds both from the same RPC URLs, chain and deployment file.
    pub async fn new(
        db: PgPool,
        rpc_urls: Vec<Url>,
        chain_id: u64,
        deployment: &std::path::Path,
        args: &RelayerArgs,
    ) -> anyhow::Result<Self> {
        let relayer = relayer(db.clone(), rpc_urls.clone(), chain_id, deployment, args).await?;
        let treasury = treasury(db, rpc_urls, chain_id, deployment, args).await?;
        Ok(Self { relayer, treasury })
    }

    pub fn spawn(self, supervisor: &mut Supervisor) {
        supervisor.spawn(self.relayer);
        if let Some(treasury) = self.treasury {
            supervisor.spawn(treasury);
        }
    }
}

/// Builds the treasury role when a treasury key is configured: it sends with its own key
/// through the same outbox, on the same RPC and deployment as the relayer.
async fn treasury(
    db: PgPool,
    rpc_urls: Vec<Url>,
    chain_id: u64,
    deployment: &std::path::Path,
    args: &RelayerArgs,
) -> anyhow::Result<Option<Treasury>> {
    let Some(key) = args.treasury_key.clone() else {
        return Ok(None);
    };
    let loaded = Deployment::load(deployment)?;
    loaded.expect_chain(deployment, chain_id)?;
    let rpc = ChainRpc::with_failover(rpc_urls, chain_id, RPC_TIMEOUT).role("treasury");
    rpc.check().await.context("the chain RPC is not usable")?;
    let outbox = Outbox::new(db.clone(), rpc, EthereumWallet::new(key), outbox_config(args));
    let config = TreasuryConfig {
        escrow: loaded.ad_escrow.address,
        poll_interval: args.relayer_poll,
    };
    Ok(Some(Treasury::new(db, outbox, config)))
}

fn outbox_config(args: &RelayerArgs) -> OutboxConfig {
    OutboxConfig {
        confirmations: args.confirmations.max(1),
        replace_after: args.replace_after,
        fee_ceiling: args.max_fee_per_gas,
    }
}

/// Builds the relayer after checking that the RPC serves the deployment's chain. Later
/// URLs take over when one fails.
async fn relayer(
    db: PgPool,
    rpc_urls: Vec<Url>,
    chain_id: u64,
    deployment: &std::path::Path,
    args: &RelayerArgs,
) -> anyhow::Result<Relayer> {
    let signer = signer(args)?;
    let loaded = Deployment::load(deployment)?;
    loaded.expect_chain(deployment, chain_id)?;
    let rpc = ChainRpc::with_failover(rpc_urls, chain_id, RPC_TIMEOUT).role("relayer");
    rpc.check().await.context("the chain RPC is not usable")?;
    let config = RelayerConfig {
        escrow: loaded.ad_escrow.address,
        escrow_block: loaded.ad_escrow.block,
        consent_registry: loaded.consent_registry.address,
        epochs: EpochPolicy {
            interval: args.epoch_interval,
            owed_threshold: args.epoch_owed_threshold,
        },
        outbox: outbox_config(args),
        poll_interval: args.relayer_poll,
        low_balance: args.relayer_low_balance,
    };
    Ok(Relayer::new(db, rpc, EthereumWallet::new(signer), config))
}
