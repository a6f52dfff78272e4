//! The payout tree: a Merkle tree of every payee's cumulative earnings per token, as
//! `AdEscrow.claim` checks it (docs/ENCODING.md).
//!
//! - a payee is an (account, token) with a permanent index (`relayer::epoch` assigns it;
//!   the escrow keeps what each index has claimed, so an index never changes hands);
//! - `indexAndAmount` = `index << 128 | cumulativeAmount`, both below 2^128;
//! - leaf = `keccak256(abi.encode(account, token, indexAndAmount))`, hashed once: its
//!   preimage is 96 bytes and an inner node's 64, so a leaf can never pass for an inner node;
//! - leaves sorted by hash, laid out in an array heap (`tree[len - 1 - i] = leaf[i]`), as
//!   OpenZeppelin's `StandardMerkleTree` does;
//! - inner node = `keccak256` of its two children in ascending order.

use std::collections::HashSet;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// What one payee has earned in one token since the beginning, in token base units, under
/// its permanent index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayoutLeaf {
    pub account: Address,
    pub token: Address,
    /// The payee's index: stands for (`account`, `token`) for the escrow's whole life.
    pub index: u64,
    /// Below 2^128 in any tree (`PayoutTree::new` refuses more).
    pub cumulative_amount: U256,
}

impl PayoutLeaf {
    /// The one word the leaf and `claim` carry: the index in the high 128 bits, the
    /// cumulative amount in the low 128. Only meaningful for an amount below 2^128, which
    /// every leaf of a [`PayoutTree`] has.
    pub fn index_and_amount(&self) -> U256 {
        (U256::from(self.index) << 128) | self.cumulative_amount
    }

    pub fn hash(&self) -> B256 {
        keccak256((self.account, self.token, self.index_and_amount()).abi_encode())
    }
}

/// Why a set of leaves makes no tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("a payout tree needs at least one leaf")]
    Empty,
    /// The contract keeps 128 bits per index; more would spill into the index.
    #[error("{account}'s cumulative amount of {token} is {amount}, not below 2^128")]
    TooLarge {
        account: Address,
        token: Address,
        amount: U256,
    },
    /// Two leaves under one index would share what the escrow records as claimed.
    #[error("index {0} is on two leaves")]
    DuplicateIndex(u64),
}

#[derive(Debug, Clone)]
pub struct PayoutTree {
    /// The array heap: root at 0, children of `i` at `2i + 1` and `2i + 2`.
    nodes: Vec<B256>,
    /// The leaves in the order given, each with its index in `nodes`.
    leaves: Vec<(PayoutLeaf, usize)>,
}

impl PayoutTree {
    pub fn new(leaves: Vec<PayoutLeaf>) -> Result<Self, TreeError> {
        if leaves.is_empty() {
            return Err(TreeError::Empty);
        }
        let mut indexes = HashSet::with_capacity(leaves.len());
        for leaf in &leaves {
            if leaf.cumulative_amount >> 128 != U256::ZERO {
                return Err(TreeError::TooLarge {
                    account: leaf.account,
                    token: leaf.token,
                    amount: leaf.cumulative_amount,
                });
            }
            if !indexes.insert(leaf.index) {
                return Err(TreeError::DuplicateIndex(leaf.index));
            }
        }
        let mut hashed: Vec<(B256, usize)> = leaves.iter().enumerate().map(|(i, leaf)| (leaf.hash(), i)).collect();
        hashed.sort_unstable();

        let len = 2 * hashed.len() - 1;
        let mut nodes = vec![B256::ZERO; len];
        let mut positions = vec![0; leaves.len()];
        for (sorted_index, (hash, original_index)) in hashed.iter().enumerate() {
            let position = len - 1 - sorted_index;
            nodes[position] = *hash;
            positions[*original_index] = position;
        }
        for i in (0..len - hashed.len()).rev() {
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        let leaves = leaves.into_iter().zip(positions).collect();
        Ok(Self { nodes, leaves })
    }

    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The leaves in the order they were given.
    pub fn leaves(&self) -> impl Iterator<Item = &PayoutLeaf> {
        self.leaves.iter().map(|(leaf, _)| leaf)
    }

    /// The proof of the `index`-th leaf (in the order given, not the payee's index),
    /// bottom-up.
    pub fn proof(&self, index: usize) -> Vec<B256> {
        let mut position = self.leaves[index].1;
        let mut proof = Vec::new();
        while position > 0 {
            let sibling = if position % 2 == 1 { position + 1 } else { position - 1 };
            proof.push(self.nodes[sibling]);
            position = (position - 1) / 2;
        }
        proof
    }
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut concatenated = [0u8; 64];
    concatenated[..32].copy_from_slice(low.as_slice());
    concatenated[32..].copy_from_slice(high.as_slice());
    keccak256(concatenated)
}

/// Recomputes the root a proof leads to, as `PayoutProof.root` does on chain.
pub fn process_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof.iter().fold(leaf, |node, sibling| hash_pair(node, *sibling))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> PayoutLeaf {
        PayoutLeaf {
            account: Address::with_last_byte(i as u8),
            token: Address::repeat_byte(0xee),
            index: i,
            cumulative_amount: U256::from(1_000 * i),
        }
    }

    #[test]
    fn every_proof_leads_to_the_root() {
        for size in [1, 2, 3, 7, 8, 33] {
            let tree = PayoutTree::new((1..=size).map(leaf).collect()).unwrap();
            for (i, l) in tree.leaves().enumerate() {
                assert_eq!(
                    process_proof(l.hash(), &tree.proof(i)),
                    tree.root(),
                    "size {size}, leaf {i}"
                );
            }
        }
    }

    #[test]
    fn a_single_leaf_is_its_own_root() {
        let tree = PayoutTree::new(vec![leaf(1)]).unwrap();
        assert_eq!(tree.root(), leaf(1).hash());
        assert!(tree.proof(0).is_empty());
    }

    #[test]
    fn the_root_does_not_depend_on_leaf_order() {
        let forward = PayoutTree::new((1..=9).map(leaf).collect()).unwrap();
        let backward = PayoutTree::new((1..=9).rev().map(leaf).collect()).unwrap();
        assert_eq!(forward.root(), backward.root());
    }

    #[test]
    fn a_changed_amount_or_index_fails_its_proof() {
        let tree = PayoutTree::new((1..=5).map(leaf).collect()).unwrap();
        let mut forged = leaf(3);
        forged.cumulative_amount += U256::from(1);
        assert_ne!(process_proof(forged.hash(), &tree.proof(2)), tree.root());
        let mut moved = leaf(3);
        moved.index = 4;
        assert_ne!(process_proof(moved.hash(), &tree.proof(2)), tree.root());
    }

    #[test]
    fn the_index_is_the_high_half_of_the_word() {
        let leaf = PayoutLeaf {
            index: 5,
            cumulative_amount: U256::from(7u64),
            ..leaf(1)
        };
        assert_eq!(leaf.index_and_amount(), (U256::from(5u64) << 128) + U256::from(7u64));
        let word = leaf.index_and_amount().to_be_bytes::<32>();
        assert_eq!(&word[..16], &5u128.to_be_bytes());
        assert_eq!(&word[16..], &7u128.to_be_bytes());
        // The leaf is one keccak of the 96-byte encoding, not two.
        let mut preimage = Vec::with_capacity(96);
        preimage.extend_from_slice(B256::left_padding_from(leaf.account.as_slice()).as_slice());
        preimage.extend_from_slice(B256::left_padding_from(leaf.token.as_slice()).as_slice());
        preimage.extend_from_slice(&word);
        assert_eq!(leaf.hash(), keccak256(&preimage));
    }

    #[test]
    fn amounts_from_2_pow_128_are_refused() {
        let largest = PayoutLeaf {
            cumulative_amount: U256::from(u128::MAX),
            ..leaf(1)
        };
        assert!(PayoutTree::new(vec![largest]).is_ok(), "2^128 - 1 still fits");
        let too_large = PayoutLeaf {
            cumulative_amount: U256::from(1u64) << 128,
            ..leaf(1)
        };
        assert_eq!(
            PayoutTree::new(vec![leaf(2), too_large]).unwrap_err(),
            TreeError::TooLarge {
                account: too_large.account,
                token: too_large.token,
                amount: too_large.cumulative_amount,
            }
        );
    }

    #[test]
    fn an_index_on_two_leaves_is_refused() {
        let twin = PayoutLeaf { index: 2, ..leaf(3) };
        assert_eq!(
            PayoutTree::new(vec![leaf(1), leaf(2), twin]).unwrap_err(),
            TreeError::DuplicateIndex(2)
        );
    }

    #[test]
    fn empty_trees_are_refused() {
        assert_eq!(PayoutTree::new(Vec::new()).unwrap_err(), TreeError::Empty);
    }
}
