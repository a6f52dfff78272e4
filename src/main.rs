//! The `adescrow` binary: parse the command line, set up logging, run the chosen role.
//! Everything else lives in the library so that tests and other binaries share it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = adescrow::platform::config::Cli::parse();
    adescrow::platform::telemetry::init_tracing(&cli.log);
    adescrow::app::cli::run(cli).await
}
