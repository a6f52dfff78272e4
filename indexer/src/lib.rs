//! The reorg-safe chain -> Postgres mirror: the follower that reads the contracts' logs
//! (`follower`), the rows they become (`events`), the writes that store them with the block
//! window and the checkpoint (`store`), and the metrics it records (`metrics`). Chain access
//! itself is `adescrow_chain::rpc`.

pub mod events;
pub mod follower;
pub mod metrics;
pub mod store;
