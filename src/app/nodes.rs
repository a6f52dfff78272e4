//! `adescrow node` and `adescrow witness`: the two processes publishers and witnesses run.
//! Each serves its routes and runs its one background role under the supervisor until a
//! shutdown signal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::Context;
use tokio::net::TcpListener;

use crate::platform::config::{NodeArgs, SigningDomainArgs, WitnessArgs};
use crate::platform::deploy::Deployment;
use crate::platform::shutdown;
use crate::platform::worker::{Health, Role, StepError, Supervisor};
use crate::witnessing::api::ApiClient;
use crate::witnessing::hoster::{Batcher, HosterConfig, HosterNode};
use crate::witnessing::routes;
use crate::witnessing::witness::{Witness, WitnessConfig};

/// How long a call to the API may take.
const API_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let escrow = escrow(&args.domain)?;
    let api = ApiClient::new(
        args.api_url.clone(),
        args.node_key.clone(),
        args.domain.chain_id,
        API_TIMEOUT,
    )?;
    let config = HosterConfig {
        signer: args.node_key,
        chain_id: args.domain.chain_id,
        escrow,
        witness: args.witness_url,
        batch_size: args.batch_size,
        batch_age: args.batch_age,
        witness_timeout: args.witness_timeout,
        witness_patience: args.witness_patience,
    };
    let node = HosterNode::open(&args.store, api, config)
        .await
        .with_context(|| format!("cannot open the node store {}", args.store.display()))?;
    let listener = bind(args.listen).await?;
    serve_node(Arc::new(node), listener, args.batch_tick, shutdown::signal).await
}

pub async fn witness(args: WitnessArgs) -> anyhow::Result<()> {
    let config = WitnessConfig {
        signer: args.witness_key,
        chain_id: args.domain.chain_id,
        escrow: escrow(&args.domain)?,
        tolerance_secs: i64::try_from(args.tolerance.as_secs()).unwrap_or(i64::MAX),
        retention_secs: i64::try_from(args.retention.as_secs()).unwrap_or(i64::MAX),
    };
    let witness = Witness::open(&args.store, config)
        .with_context(|| format!("cannot open the witness store {}", args.store.display()))?;
    let listener = bind(args.listen).await?;
    serve_witness(Arc::new(witness), listener, shutdown::signal).await
}

/// Serves a hoster node on `listener` and runs its batcher every `tick`, until `shutdown()`
/// resolves (a test stops an in-process node this way).
pub async fn serve_node<S, F>(
    node: Arc<HosterNode>,
    listener: TcpListener,
    tick: Duration,
    shutdown: S,
) -> anyhow::Result<()>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut supervisor = Supervisor::new(Health::default(), Duration::MAX, shutdown());
    supervisor.spawn(Batcher {
        node: node.clone(),
        tick,
        forgot_at: 0,
    });
    tracing::info!(address = %listener.local_addr()?, node = %node.address(), "hoster node listening");
    axum::serve(listener, routes::hoster_router(node))
        .with_graceful_shutdown(shutdown())
        .await
        .context("node server error")?;
    supervisor.wait().await;
    Ok(())
}

/// Serves a witness node on `listener`, pruning old observations hourly, until `shutdown()`.
pub async fn serve_witness<S, F>(witness: Arc<Witness>, listener: TcpListener, shutdown: S) -> anyhow::Result<()>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut supervisor = Supervisor::new(Health::default(), Duration::MAX, shutdown());
    supervisor.spawn(Pruner(witness.clone()));
    tracing::info!(address = %listener.local_addr()?, witness = %witness.address(), "witness node listening");
    axum::serve(listener, routes::witness_router(witness))
        .with_graceful_shutdown(shutdown())
        .await
        .context("witness server error")?;
    supervisor.wait().await;
    Ok(())
}

/// The witness's clean-up of observations past their retention.
#[derive(Debug, Clone)]
struct Pruner(Arc<Witness>);

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl Role for Pruner {
    fn name(&self) -> &'static str {
        "witness-pruner"
    }

    fn longest_quiet(&self) -> Duration {
        PRUNE_EVERY
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.0
            .prune(now)
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        Ok(PRUNE_EVERY)
    }
}

async fn bind(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (is the port taken?)"))
}

/// The escrow a node's signatures name: given, or from the deployment file.
fn escrow(domain: &SigningDomainArgs) -> anyhow::Result<Address> {
    match domain.escrow_address {
        Some(address) => Ok(address),
        None => Ok(Deployment::load(&domain.deployment)
            .with_context(|| {
                format!(
                    "give ADESCROW_ESCROW_ADDRESS or a deployment file ({} cannot be read)",
                    domain.deployment.display()
                )
            })?
            .ad_escrow
            .address),
    }
}
