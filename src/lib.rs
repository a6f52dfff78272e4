//! adescrow: escrow and settlement for advertising on an EVM chain.
//!
//! The crate is the whole off-chain service; each role (`serve`, `migrate`, and the roles
//! later issues add) is a subcommand of the `adescrow` binary so that it can scale out as
//! its own process. See `ARCHITECTURE.md` for which module owns which concept.

pub mod accounts;
pub mod analytics;
pub mod auth;
pub mod brands;
pub mod campaigns;
pub mod cli;
pub mod config;
pub mod creatives;
pub mod db;
pub mod demo;
pub mod deploy;
pub mod http;
pub mod indexer;
pub mod leader;
pub mod ledger;
pub mod money;
pub mod nodes;
pub mod payout_tree;
pub mod payouts;
pub mod placements;
pub mod pricing;
pub mod relayer;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod serving;
pub mod shutdown;
pub mod telemetry;
pub mod tracking;
pub mod viewers;
pub mod worker;

/// Contract bindings and signed messages live with the chain code in `adescrow-indexer`.
pub use adescrow_indexer::contracts;
pub mod wire;
