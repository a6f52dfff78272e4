//! `adescrow indexer` (and `serve --with-indexer`): wires configuration, the deployment file
//! and the RPC endpoints into the chain follower of `adescrow-indexer`.

use std::future::Future;

use adescrow_indexer::events::Contracts;
use adescrow_indexer::follower::{Follower, FollowerConfig};
use adescrow_indexer::rpc::ChainRpc;
use anyhow::Context;
use sqlx::PgPool;
use url::Url;

use crate::config::FollowArgs;
use crate::deploy::Deployment;

/// Builds a follower for the deployment named in `args`, after checking that the RPC serves
/// the chain the deployment was made on.
pub async fn follower(db: PgPool, rpc_urls: Vec<Url>, chain_id: u64, args: &FollowArgs) -> anyhow::Result<Follower> {
    let deployment = Deployment::load(&args.deployment)?;
    deployment.expect_chain(&args.deployment, chain_id)?;
    let rpc = ChainRpc::with_failover(rpc_urls, chain_id, args.rpc_timeout);
    rpc.check().await.context("the chain RPC is not usable")?;

    let contracts = Contracts {
        escrow: deployment.ad_escrow.address,
        consent: deployment.consent_registry.address,
    };
    let mut config = FollowerConfig::new(
        contracts,
        deployment.ad_escrow.block.min(deployment.consent_registry.block),
    );
    config.finality_depth = args.finality_depth;
    config.max_range = args.max_log_range.max(1);
    config.window = args.reorg_window.max(1);
    config.poll_interval = args.poll_interval;
    Ok(Follower::new(rpc, db, config))
}

/// Runs a follower until `shutdown`; only a fatal error (a reorg deeper than the window, a
/// permanent RPC error) ends it early.
pub async fn run(follower: Follower, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tracing::info!("indexer following the chain");
    follower.run(shutdown).await.context("indexer stopped")
}
