//! Permanent payee indexes: every (account, token) that ever has a leaf gets one index for
//! the escrow's whole life (docs/ENCODING.md).
//!
//! The escrow stores what each index has claimed, two indexes per storage slot, and a claim
//! logs only the index and the amount; so an index that changed hands would pay its new
//! owner only what exceeds the old owner's claims, and the mirror would credit the wrong
//! payee. Hence the rules: indexes are assigned densely from 0 (the next free ones), new
//! payees of an epoch in order of token then account (consecutive new payees share a slot,
//! and a rebuild assigns the same ones), in the transaction that stores the epoch's leaves.
//! A rolled-back build leaves nothing behind; a committed index is never changed or removed
//! (`payout_indexes` refuses updates and deletes), whatever becomes of its epoch.

use std::collections::HashMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use sqlx::PgConnection;

use super::payout_tree::PayoutLeaf;

/// A payee: (account, token).
pub type Payee = (Address, Address);

/// Sets each leaf's index: its payee's from `known`, or else the next free one, `next`
/// first, new payees in order of token then account. Returns the positions of the leaves
/// whose payees are new, in the order of their indexes. Each payee must be on one leaf.
pub fn assign(known: &HashMap<Payee, u64>, next: u64, leaves: &mut [PayoutLeaf]) -> Vec<usize> {
    let mut new = Vec::new();
    for (position, leaf) in leaves.iter_mut().enumerate() {
        match known.get(&(leaf.account, leaf.token)) {
            Some(&index) => leaf.index = index,
            None => new.push(position),
        }
    }
    new.sort_unstable_by_key(|&position| (leaves[position].token, leaves[position].account));
    for (&position, index) in new.iter().zip(next..) {
        leaves[position].index = index;
    }
    new
}

/// Sets the index of every leaf (whatever it held), assigning the next free ones to payees
/// that have none. Runs in the caller's transaction, which must be the one that stores these
/// leaves; it takes a lock that makes concurrent assigners wait for each other, so that the
/// next free index is.
pub async fn index_leaves(
    conn: &mut PgConnection,
    chain_id: u64,
    leaves: &mut [PayoutLeaf],
) -> Result<(), sqlx::Error> {
    let chain = chain_id as i64;
    // Readers (the API, the mirror's views) are not blocked; only another assigner is.
    sqlx::query!("LOCK TABLE payout_indexes IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    let known = sqlx::query!(
        r#"SELECT leaf_index, account AS "account: SqlAddress", token AS "token: SqlAddress"
           FROM payout_indexes WHERE chain_id = $1"#,
        chain
    )
    .fetch_all(&mut *conn)
    .await?;
    let next = known.iter().map(|row| row.leaf_index as u64 + 1).max().unwrap_or(0);
    let known: HashMap<Payee, u64> = known
        .into_iter()
        .map(|row| ((row.account.0, row.token.0), row.leaf_index as u64))
        .collect();
    let new = assign(&known, next, leaves);
    if new.is_empty() {
        return Ok(());
    }

    let (mut indexes, mut accounts, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    for &position in &new {
        let leaf = &leaves[position];
        indexes.push(leaf.index as i64);
        accounts.push(SqlAddress(leaf.account));
        tokens.push(SqlAddress(leaf.token));
    }
    // A payee on two leaves would get two indexes here, and the unique key refuses that.
    sqlx::query!(
        "INSERT INTO payout_indexes (chain_id, leaf_index, account, token)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::bytea[])",
        chain,
        &indexes,
        &accounts as &[SqlAddress],
        &tokens as &[SqlAddress]
    )
    .execute(&mut *conn)
    .await?;
    tracing::info!(chain_id, first = next, count = new.len(), "payee indexes assigned");
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::U256;

    use super::*;

    fn leaf(account: Address, token: Address) -> PayoutLeaf {
        PayoutLeaf {
            account,
            token,
            index: u64::MAX,
            cumulative_amount: U256::from(1u64),
        }
    }

    #[test]
    fn known_payees_keep_their_index_and_new_ones_follow_by_token_then_account() {
        let (a, b, c) = (
            Address::repeat_byte(0x0a),
            Address::repeat_byte(0x0b),
            Address::repeat_byte(0x0c),
        );
        let (eurc, usdc) = (Address::repeat_byte(0xc1), Address::repeat_byte(0xc2));
        let known = HashMap::from([((c, usdc), 0), ((a, eurc), 1)]);
        let mut leaves = vec![
            leaf(b, usdc),
            leaf(c, usdc),
            leaf(a, usdc),
            leaf(b, eurc),
            leaf(a, eurc),
        ];
        let new = assign(&known, 2, &mut leaves);
        let indexes: Vec<u64> = leaves.iter().map(|l| l.index).collect();
        assert_eq!(
            indexes,
            vec![4, 0, 3, 2, 1],
            "(b, eurc), (a, usdc), (b, usdc) get 2, 3, 4"
        );
        assert_eq!(new, vec![3, 2, 0], "the new leaves, in the order of their indexes");
    }

    #[test]
    fn an_empty_table_starts_at_zero() {
        let mut leaves = vec![
            leaf(Address::repeat_byte(2), Address::ZERO),
            leaf(Address::repeat_byte(1), Address::ZERO),
        ];
        assign(&HashMap::new(), 0, &mut leaves);
        assert_eq!((leaves[0].index, leaves[1].index), (1, 0));
    }
}
