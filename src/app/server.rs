//! `adescrow serve`: the API process. Connects, optionally migrates, serves until a shutdown
//! signal, then lets in-flight requests finish and every background role stop between steps.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::adserver::scheduler::Scheduler;
use crate::adserver::serving::Refresh;
use crate::http::{self, AppState};
use crate::platform::config::ServeArgs;
use crate::platform::worker::{Role, StepError, Supervisor};
use crate::programs::growth::Programs;
use crate::{mirror::indexer, platform::db, platform::shutdown, platform::telemetry, settlement::relayer};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let pool = db::connect(&args.database)
        .await
        .context("cannot connect to Postgres (is it running, and is DATABASE_URL right?)")?;
    if args.migrate {
        db::migrate(&pool).await.context("migration failed")?;
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is the port taken?)", args.listen))?;
    run(args, pool, listener, shutdown::signal).await
}

/// Runs the API on `listener` with every role `args` asks for (scheduler, serving refresh
/// and housekeeping always; indexer and relayer when enabled), each under the supervisor,
/// until `shutdown()` resolves. Each part gets its own `shutdown()` future, so a test can
/// stop a whole in-process devnet the way a signal stops `serve`.
pub async fn run<S, F>(args: ServeArgs, pool: PgPool, listener: TcpListener, shutdown: S) -> anyhow::Result<()>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let indexer = if args.with_indexer {
        let follower = indexer::follower(
            pool.clone(),
            vec![args.api.rpc_url.clone()],
            args.api.chain_id,
            &args.follow,
        )
        .await?;
        Some(indexer::Indexer::new(follower, pool.clone(), args.api.chain_id))
    } else {
        None
    };
    let senders = if args.with_relayer {
        let senders = relayer::setup::Senders::new(
            pool.clone(),
            vec![args.api.rpc_url.clone()],
            args.api.chain_id,
            &args.follow.deployment,
            &args.relayer,
        )
        .await?;
        Some(senders)
    } else {
        None
    };
    let metrics_listener = match args.api.metrics_addr {
        Some(address) => Some(telemetry::bind_metrics(address).await?),
        None => None,
    };
    let mut args = args;
    if let Some(key) = &args.relayer.treasury_key {
        args.api.treasury_address.get_or_insert(key.address());
    }
    if args.follow.deployment.exists() {
        let deployment = crate::platform::deploy::Deployment::load(&args.follow.deployment)
            .context("cannot read the deployment file for the contract addresses")?;
        args.api.escrow_address.get_or_insert(deployment.ad_escrow.address);
        args.api
            .consent_address
            .get_or_insert(deployment.consent_registry.address);
        args.api.grace_period = args.api.grace_period.or(deployment.grace_period);
    }
    let chain_id = args.api.chain_id;
    let serving_refresh = args.api.serving_refresh;
    let programs_interval = args.programs_interval;
    let state = AppState::new(args.api, pool.clone()).context("invalid API configuration")?;
    crate::leaderboards::tally::declare(&pool, &state.leaderboard_zones)
        .await
        .context("cannot declare the leaderboard zones")?;
    state
        .ad_server
        .refresh()
        .await
        .context("cannot build the serving index")?;

    let mut supervisor = Supervisor::new(state.roles.clone(), args.role_stall_after, shutdown());
    supervisor.spawn(Housekeeping(state.clone()));
    supervisor.spawn(Refresh::new(state.ad_server.clone(), serving_refresh));
    supervisor.spawn(Programs {
        db: pool.clone(),
        chain_id,
        growth: (*state.growth).clone(),
        interval: programs_interval,
    });
    supervisor.spawn(crate::leaderboards::store::Freezer {
        db: pool.clone(),
        chain_id,
    });
    supervisor.spawn(crate::statements::roller::Roller { db: pool.clone() });
    supervisor.spawn(crate::badges::job::Awarder {
        db: pool.clone(),
        chain_id,
    });
    supervisor.spawn(Scheduler {
        db: pool,
        chain_id,
        interval: args.scheduler_interval,
    });
    if let Some(indexer) = indexer {
        supervisor.spawn(indexer);
    }
    if let Some(senders) = senders {
        senders.spawn(&mut supervisor);
    }
    let metrics = metrics_listener.map(|listener| tokio::spawn(telemetry::serve_metrics(listener, shutdown())));

    tracing::info!(address = %listener.local_addr()?, "API listening");
    axum::serve(
        listener,
        http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .context("server error")?;
    tracing::info!("API stopped");
    supervisor.wait().await;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics server task panicked")??;
    }
    Ok(())
}

/// The API process's periodic clean-up ([`AppState::housekeeping`]), every minute.
#[derive(Debug, Clone)]
struct Housekeeping(AppState);

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

impl Role for Housekeeping {
    fn name(&self) -> &'static str {
        "housekeeping"
    }

    fn longest_quiet(&self) -> Duration {
        HOUSEKEEPING_EVERY
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        self.0.housekeeping().await.map_err(|error| {
            StepError::Retry(anyhow::Error::new(error).context("could not purge expired sign-in nonces"))
        })?;
        Ok(HOUSEKEEPING_EVERY)
    }
}
