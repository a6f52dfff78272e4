//! Integration tests: the real API against real Postgres (`#[sqlx::test]` gives each test
//! its own database) and, where the chain matters, a real anvil.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a panic is how a test fails")]

mod support;

mod access;
mod api_keys;
mod badges;
mod campaigns;
mod db_types;
mod decisions;
mod demo;
mod errors;
mod escrow;
mod fixtures;
mod growth;
mod idempotency;
mod indexer;
mod leaderboards;
mod market;
mod metrics;
mod mirror_totals;
mod money;
mod nodes;
mod openapi;
mod pages;
mod programs;
mod promos;
mod rate_limit;
mod readiness;
mod receipts;
mod relayer;
mod resellers;
mod rpc_faults;
mod scheduler;
mod sign_in;
mod statements;
mod supervision;
mod vectors;
mod witnessing;
