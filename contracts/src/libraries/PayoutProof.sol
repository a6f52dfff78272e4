// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title PayoutProof
/// @notice Leaf hashing and proof walking for payout trees (docs/ENCODING.md).
/// @dev Written in assembly because claims are the hottest path: hashing in scratch space and
///      walking the calldata proof directly saves several hundred gas per claim over the
///      generic libraries.
///
///      A leaf is hashed once: its preimage is 96 bytes and an inner node's is 64, so no leaf
///      can pass for an inner node or the other way round (the reason OpenZeppelin's
///      StandardMerkleTree hashes its 64-byte leaves twice).
library PayoutProof {
    /// @notice `keccak256(abi.encode(account, token, indexAndAmount))`, where
    ///         `indexAndAmount` is the payee's index in the high 128 bits and its cumulative
    ///         amount in the low 128.
    function leaf(address account, address token, uint256 indexAndAmount)
        internal
        pure
        returns (bytes32 hash)
    {
        assembly ("memory-safe") {
            // Three words past the free memory pointer: used and abandoned, never allocated.
            let ptr := mload(0x40)
            // Masked so that dirty upper bits cannot change the leaf (as abi.encode does).
            mstore(ptr, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x20), and(token, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x40), indexAndAmount)
            hash := keccak256(ptr, 0x60)
        }
    }

    /// @notice The root that `proof` leads to from `leafHash`, hashing each pair in
    ///         ascending order.
    function root(bytes32[] calldata proof, bytes32 leafHash) internal pure returns (bytes32 node) {
        assembly ("memory-safe") {
            node := leafHash
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                // The ordered pair in scratch space without a branch: the larger of the two
                // goes to 0x20.
                let larger := shl(5, gt(node, sibling))
                mstore(larger, node)
                mstore(xor(larger, 0x20), sibling)
                node := keccak256(0x00, 0x40)
            }
        }
    }
}
