//! Chain access for adescrow.
//!
//! This crate owns everything that reads the chain: today the RPC client the API uses to
//! check that the chain answers; the reorg-safe chain -> Postgres mirror builds on it.

pub mod events;
pub mod follower;
pub mod metrics;
pub mod rpc;
pub mod store;
