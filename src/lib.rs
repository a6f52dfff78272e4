//! adescrow: escrow and settlement for advertising on an EVM chain.
//!
//! The crate is the whole off-chain service, one folder per domain; each role (`serve`,
//! `relayer`, `indexer`, `demo`, ...) is a subcommand of the `adescrow` binary so that it
//! can scale out as its own process. `ARCHITECTURE.md` is the map.

pub mod accounts;
pub mod adserver;
pub mod app;
pub mod badges;
pub mod billing;
pub mod demo;
pub mod http;
pub mod leaderboards;
pub mod mirror;
pub mod money;
pub mod platform;
pub mod programs;
pub mod settlement;
pub mod statements;
pub mod witnessing;

/// Contract bindings and signed messages, shared with the indexer.
pub use adescrow_chain::contracts;
