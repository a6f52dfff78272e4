//! The programs of the off-chain business (referrals, affiliates, the marketplace, rewards,
//! promo codes, resellers). Each is a domain folder here in the shape of the others: its
//! types, rules, errors and SQL, posting to the ledger in `money` and paid through the claim.
pub mod affiliates;
pub mod codes;
pub mod cursors;
pub mod growth;
pub mod market;
pub mod promos;
pub mod referrals;
pub mod resellers;

use alloy::primitives::Address;

/// A wallet as a program shows it to someone else (a referrer its referees, an affiliate its
/// advertisers): checksummed and shortened to `0x1234…abcd`.
pub fn short_address(address: Address) -> String {
    let full = address.to_checksum(None);
    format!("{}…{}", &full[..6], &full[full.len() - 4..])
}
