//! `adescrow serve`: the API process. Connects, optionally migrates, serves until a shutdown
//! signal, then lets in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::config::ServeArgs;
use crate::http::{self, AppState};
use crate::{db, indexer, relayer, scheduler, shutdown};

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

/// Runs the API on `listener` with every role `args` asks for (scheduler always; indexer and
/// relayer when enabled) until `shutdown()` resolves. Each role gets its own `shutdown()`
/// future, so a test can stop a whole in-process devnet the way a signal stops `serve`.
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
        Some(tokio::spawn(indexer::run(follower, shutdown())))
    } else {
        None
    };
    let relayer = if args.with_relayer {
        let relayer = relayer::setup::relayer(
            pool.clone(),
            args.api.rpc_url.clone(),
            args.api.chain_id,
            &args.follow.deployment,
            &args.relayer,
        )
        .await?;
        Some(tokio::spawn(relayer.run(shutdown())))
    } else {
        None
    };
    let mut args = args;
    if args.follow.deployment.exists() {
        let deployment = crate::deploy::Deployment::load(&args.follow.deployment)
            .context("cannot read the deployment file for the contract addresses")?;
        args.api.escrow_address.get_or_insert(deployment.ad_escrow.address);
        args.api
            .consent_address
            .get_or_insert(deployment.consent_registry.address);
        args.api.grace_period = args.api.grace_period.or(deployment.grace_period);
    }
    let chain_id = args.api.chain_id;
    let serving_refresh = args.api.serving_refresh;
    let state = AppState::new(args.api, pool.clone()).context("invalid API configuration")?;
    state.spawn_housekeeping();
    state
        .ad_server
        .refresh()
        .await
        .context("cannot build the serving index")?;
    let ad_server = state.ad_server.spawn(serving_refresh, shutdown());
    let scheduler = tokio::spawn(scheduler::run(pool, chain_id, args.scheduler_interval, shutdown()));

    tracing::info!(address = %listener.local_addr()?, "API listening");
    axum::serve(
        listener,
        http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .context("server error")?;
    tracing::info!("API stopped");
    ad_server.await.context("serving index task panicked")?;
    scheduler.await.context("scheduler task panicked")?;
    if let Some(indexer) = indexer {
        indexer.await.context("indexer task panicked")??;
    }
    if let Some(relayer) = relayer {
        relayer.await.context("relayer task panicked")??;
    }
    Ok(())
}
