//! The programs of the off-chain business (referrals, affiliates, the marketplace, rewards,
//! promo codes, resellers). Each is a domain folder here in the shape of the others: its
//! types, rules, errors and SQL, posting to the ledger in `money` and paid through the claim.
pub mod affiliates;
pub mod codes;
pub mod growth;
pub mod market;
pub mod referrals;
