// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title PayoutProof
/// @notice Leaf hashing and proof checking for payout trees (docs/ENCODING.md): the same
///         results as OpenZeppelin's StandardMerkleTree leaves and `MerkleProof.verifyCalldata`.
/// @dev Written in assembly because claims are the hottest path: hashing in scratch space and
///      walking the calldata proof directly saves several hundred gas per claim over the
///      generic libraries.
library PayoutProof {
    /// @notice `keccak256(bytes.concat(keccak256(abi.encode(account, token, cumulativeAmount))))`.
    function leaf(address account, address token, uint256 cumulativeAmount)
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
            mstore(add(ptr, 0x40), cumulativeAmount)
            mstore(0x00, keccak256(ptr, 0x60))
            hash := keccak256(0x00, 0x20)
        }
    }

    /// @notice Whether `proof` leads from `leafHash` to `root`, hashing each pair in ascending
    ///         order.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash)
        internal
        pure
        returns (bool valid)
    {
        assembly ("memory-safe") {
            let node := leafHash
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                // Scratch space holds the ordered pair.
                switch lt(sibling, node)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
            valid := eq(node, root)
        }
    }
}
