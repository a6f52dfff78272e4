//! What every adescrow role shares about the chain: the contract bindings and EIP-712
//! messages (`contracts`), the JSON-RPC client and its one classification of failures
//! (`rpc`), and how chain values are stored in Postgres (`sql`). The indexer and the
//! service both build on it, and neither can reach into the other through it.

pub mod contracts;
pub mod rpc;
pub mod sql;
