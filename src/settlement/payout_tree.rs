//! The payout tree: a Merkle tree of every payee's cumulative earnings per token, built
//! exactly like OpenZeppelin's `StandardMerkleTree` so that `AdEscrow.claim` (which uses
//! OpenZeppelin's `MerkleProof`) accepts its proofs.
//!
//! - leaf = `keccak256(bytes.concat(keccak256(abi.encode(account, token, cumulativeAmount))))`
//!   (hashed twice so that a leaf can never be mistaken for an inner node);
//! - leaves sorted by hash, laid out in an array heap (`tree[len - 1 - i] = leaf[i]`);
//! - inner node = `keccak256` of its two children in ascending order.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// What one payee has earned in one token since the beginning, in token base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayoutLeaf {
    pub account: Address,
    pub token: Address,
    pub cumulative_amount: U256,
}

impl PayoutLeaf {
    pub fn hash(&self) -> B256 {
        let encoded = (self.account, self.token, self.cumulative_amount).abi_encode();
        keccak256(keccak256(encoded))
    }
}

/// A tree needs at least one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payout tree needs at least one leaf")]
pub struct EmptyTree;

#[derive(Debug, Clone)]
pub struct PayoutTree {
    /// The array heap: root at 0, children of `i` at `2i + 1` and `2i + 2`.
    nodes: Vec<B256>,
    /// The leaves in the order given, each with its index in `nodes`.
    leaves: Vec<(PayoutLeaf, usize)>,
}

impl PayoutTree {
    pub fn new(leaves: Vec<PayoutLeaf>) -> Result<Self, EmptyTree> {
        if leaves.is_empty() {
            return Err(EmptyTree);
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

    /// The proof of the `index`-th leaf (in the order given), bottom-up.
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

/// Recomputes the root a proof leads to, as OpenZeppelin's `MerkleProof.processProof` does.
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
    fn a_changed_amount_fails_its_proof() {
        let tree = PayoutTree::new((1..=5).map(leaf).collect()).unwrap();
        let mut forged = leaf(3);
        forged.cumulative_amount += U256::from(1);
        assert_ne!(process_proof(forged.hash(), &tree.proof(2)), tree.root());
    }

    #[test]
    fn empty_trees_are_refused() {
        assert_eq!(PayoutTree::new(Vec::new()).unwrap_err(), EmptyTree);
    }
}
