//! From ledger to chain: the relayer closes epochs into payout trees, sends settlements and
//! gasless consent through the outbox, and payees read their proofs to claim. Each payee
//! has a permanent index, which its leaves and claims carry.

pub mod payee_index;
pub mod payout_tree;
pub mod payouts;
pub mod relayer;
