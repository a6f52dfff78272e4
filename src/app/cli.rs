//! Dispatch of the binary's subcommands to the roles that implement them.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::platform::config::{Cli, Command, DatabaseArgs};
use crate::platform::worker::{Health, Supervisor};
use crate::{
    app::server, demo, mirror::indexer, platform::db, platform::deploy, platform::shutdown, platform::telemetry,
    settlement::relayer,
};

/// Runs the subcommand named on the command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => server::serve(*args).await,
        Command::Migrate(args) => {
            open(&args, true).await?;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Indexer(args) => {
            let pool = open(&args.database, args.migrate).await?;
            let follower = indexer::follower(pool.clone(), args.rpc_url.clone(), args.chain_id, &args.follow).await?;
            run_alone(args.metrics_addr, |supervisor| {
                supervisor.spawn(indexer::Indexer::new(follower, pool, args.chain_id))
            })
            .await
        }
        Command::Relayer(args) => {
            let pool = open(&args.database, args.migrate).await?;
            let senders = relayer::setup::Senders::new(
                pool,
                args.rpc_url.clone(),
                args.chain_id,
                &args.deployment,
                &args.relayer,
            )
            .await?;
            run_alone(args.metrics_addr, |supervisor| senders.spawn(supervisor)).await
        }
        Command::Demo(args) => {
            let mut out = std::io::stdout();
            if args.accounts {
                // For the devnet's banner: by default anvil's public development keys.
                let accounts = demo::DemoAccounts::from_args(&args)?;
                write!(out, "{}", demo::accounts::AccountsTable(&accounts))?;
                return Ok(());
            }
            let config = demo::DemoConfig::from_args(&args).context("cannot set up the demo")?;
            demo::run(&config, &mut out).await?;
            Ok(())
        }
        Command::Node(args) => super::nodes::node(*args).await,
        Command::Witness(args) => super::nodes::witness(*args).await,
        Command::Deploy(args) => {
            let deployment = deploy::deploy(&args).await.context("deployment failed")?;
            deployment.save(&args.out)?;
            tracing::info!(file = %args.out.display(), "deployment written");
            Ok(())
        }
    }
}

/// Runs the roles `spawn` adds, supervised until a shutdown signal, with `/metrics` on
/// `metrics_addr` if given. There is no `/readyz` here: the roles' restarts show in their
/// logs and metrics.
async fn run_alone(metrics_addr: Option<SocketAddr>, spawn: impl FnOnce(&mut Supervisor)) -> anyhow::Result<()> {
    let metrics = match metrics_addr {
        Some(address) => {
            let listener = telemetry::bind_metrics(address).await?;
            Some(tokio::spawn(telemetry::serve_metrics(listener, shutdown::signal())))
        }
        None => None,
    };
    // Nothing reads the health of a process without an API: no stall period.
    let mut supervisor = Supervisor::new(Health::default(), Duration::MAX, shutdown::signal());
    spawn(&mut supervisor);
    supervisor.wait().await;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics server task panicked")??;
    }
    Ok(())
}

/// Connects to Postgres, migrating first when asked.
async fn open(database: &DatabaseArgs, migrate: bool) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::connect(database)
        .await
        .context("cannot connect to Postgres (is it running, and is DATABASE_URL right?)")?;
    if migrate {
        db::migrate(&pool).await.context("migration failed")?;
    }
    Ok(pool)
}
