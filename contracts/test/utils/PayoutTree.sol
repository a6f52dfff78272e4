// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title PayoutTree
/// @notice Builds payout trees as docs/ENCODING.md lays them out, in Solidity and independently
///         of `PayoutProof`: leaf = keccak256(abi.encode(account, token, indexAndAmount)),
///         hashed once; leaves sorted ascending, laid out at the tail of a 2n-1 array (as
///         OpenZeppelin's `StandardMerkleTree` does), pairs hashed sorted.
/// @dev Quadratic sorting and linear proof lookup: fine for the few dozen leaves tests use.
library PayoutTree {
    /// @notice `index << 128 | cumulativeAmount`, the word a leaf and a claim carry.
    function pack(uint256 index, uint256 cumulativeAmount) internal pure returns (uint256) {
        require(index < 2 ** 128 && cumulativeAmount < 2 ** 128, "PayoutTree: over 128 bits");
        return index << 128 | cumulativeAmount;
    }

    /// @notice The leaf AdEscrow verifies for the payee at `index`, `account`, owed
    ///         `cumulativeAmount` of `token` in all.
    function leaf(address account, address token, uint256 index, uint256 cumulativeAmount)
        internal
        pure
        returns (bytes32)
    {
        return leaf(account, token, pack(index, cumulativeAmount));
    }

    /// @notice The leaf of an already packed `indexAndAmount`.
    function leaf(address account, address token, uint256 indexAndAmount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(account, token, indexAndAmount));
    }

    /// @notice The whole tree: `tree[0]` is the root, the sorted leaves fill the tail.
    function build(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        uint256 n = leaves.length;
        require(n > 0, "PayoutTree: no leaves");
        bytes32[] memory sorted = _sorted(leaves);
        tree = new bytes32[](2 * n - 1);
        for (uint256 i; i < n; ++i) {
            tree[tree.length - 1 - i] = sorted[i];
        }
        for (uint256 i = n - 1; i > 0; --i) {
            uint256 node = i - 1;
            tree[node] = Hashes.commutativeKeccak256(tree[2 * node + 1], tree[2 * node + 2]);
        }
    }

    /// @notice The root of the tree over `leaves`.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        return build(leaves)[0];
    }

    /// @notice The high 128 bits of the root over `leaves`: what the escrow stores and
    ///         `tokenState` reports.
    function half(bytes32[] memory leaves) internal pure returns (bytes16) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes16(root(leaves));
    }

    /// @notice The proof of `target` in the tree over `leaves`.
    function proof(bytes32[] memory leaves, bytes32 target)
        internal
        pure
        returns (bytes32[] memory)
    {
        return proofIn(build(leaves), target);
    }

    /// @notice The proof of `target` in an already built tree.
    function proofIn(bytes32[] memory tree, bytes32 target)
        internal
        pure
        returns (bytes32[] memory path)
    {
        uint256 firstLeaf = tree.length / 2;
        uint256 index = type(uint256).max;
        for (uint256 i = firstLeaf; i < tree.length; ++i) {
            if (tree[i] == target) {
                index = i;
                break;
            }
        }
        require(index != type(uint256).max, "PayoutTree: leaf not in tree");

        bytes32[] memory buffer = new bytes32[](256);
        uint256 length;
        while (index > 0) {
            buffer[length++] = tree[index % 2 == 1 ? index + 1 : index - 1];
            index = (index - 1) / 2;
        }
        path = new bytes32[](length);
        for (uint256 i; i < length; ++i) {
            path[i] = buffer[i];
        }
    }

    function _sorted(bytes32[] memory leaves) private pure returns (bytes32[] memory sorted) {
        sorted = new bytes32[](leaves.length);
        for (uint256 i; i < leaves.length; ++i) {
            bytes32 value = leaves[i];
            uint256 j = i;
            while (j > 0 && sorted[j - 1] > value) {
                sorted[j] = sorted[j - 1];
                --j;
            }
            sorted[j] = value;
        }
    }
}
