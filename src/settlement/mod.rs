//! From ledger to chain: the relayer closes epochs into payout trees, sends settlements and
//! gasless consent through the outbox, and payees read their proofs to claim.

pub mod payout_tree;
pub mod payouts;
pub mod relayer;
