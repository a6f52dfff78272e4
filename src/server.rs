//! `adescrow serve`: the API process. Connects, optionally migrates, serves until a shutdown
//! signal, then lets in-flight requests finish.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServeArgs;
use crate::http::{self, AppState};
use crate::{db, indexer, shutdown};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let pool = db::connect(&args.database)
        .await
        .context("cannot connect to Postgres (is it running, and is DATABASE_URL right?)")?;
    if args.migrate {
        db::migrate(&pool).await.context("migration failed")?;
    }
    let indexer = if args.with_indexer {
        let follower = indexer::follower(
            pool.clone(),
            vec![args.api.rpc_url.clone()],
            args.api.chain_id,
            &args.follow,
        )
        .await?;
        Some(tokio::spawn(indexer::run(follower, shutdown::signal())))
    } else {
        None
    };
    let state = AppState::new(args.api, pool).context("invalid API configuration")?;
    state.spawn_housekeeping();

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is the port taken?)", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "API listening");

    axum::serve(
        listener,
        http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown::signal())
    .await
    .context("server error")?;
    tracing::info!("API stopped");
    if let Some(indexer) = indexer {
        indexer.await.context("indexer task panicked")??;
    }
    Ok(())
}
