//! The chain as the service knows it: the indexer role that follows the contracts into
//! Postgres, and the reads of that mirror (escrow, settlements, claims, consent), each
//! answer naming its block and whether that block is final.

pub mod indexer;
pub mod reads;

pub use reads::MirrorError;
