// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {PayoutProofHarness} from "./utils/PayoutProofHarness.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice PayoutProof hashes leaves as docs/ENCODING.md says (once, 96 bytes) and walks
///         proofs exactly as OpenZeppelin's `MerkleProof.processProofCalldata` does, on
///         honest, tampered and random proofs.
contract PayoutProofTest is Test {
    uint256 internal constant MAX_LEAVES = 40;

    PayoutProofHarness internal harness;

    function setUp() public {
        harness = new PayoutProofHarness();
    }

    function _randomLeaves(bytes32 seed, uint256 count)
        internal
        pure
        returns (bytes32[] memory leaves)
    {
        leaves = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            leaves[i] = keccak256(abi.encode(seed, i));
        }
    }

    // ---------------------------------------------------------------------------------
    // leaf
    // ---------------------------------------------------------------------------------

    function testFuzz_leaf_isOneHashOfTheAbiEncoding(
        address account,
        address token,
        uint256 indexAndAmount
    ) public view {
        bytes32 expected = keccak256(abi.encode(account, token, indexAndAmount));
        assertEq(harness.leaf(account, token, indexAndAmount), expected, "leaf");
        assertEq(
            harness.leaf(account, token, indexAndAmount),
            PayoutTree.leaf(account, token, indexAndAmount),
            "same as the test tree builder"
        );
    }

    /// @dev The index is part of the leaf: the same account, token and amount under another
    ///      index is another leaf, and the amount and index are one word (index above).
    function test_leaf_coversTheIndex() public view {
        address account = address(0xA11CE);
        address token = address(0x70C3);
        bytes32 atZero = harness.leaf(account, token, PayoutTree.pack(0, 100e6));
        assertEq(atZero, harness.leaf(account, token, 100e6), "index 0 is the bare amount");
        assertTrue(
            atZero != harness.leaf(account, token, PayoutTree.pack(1, 100e6)), "index 1 differs"
        );
        assertEq(
            harness.leaf(account, token, PayoutTree.pack(7, 100e6)),
            keccak256(abi.encode(account, token, uint256(7) << 128 | 100e6)),
            "index in the high 128 bits"
        );
    }

    /// @dev The old format hashed twice (OpenZeppelin's StandardMerkleTree); the new one must
    ///      not, or Rust and Solidity would disagree.
    function test_leaf_isNotTheDoubleHash() public view {
        address account = address(0xA11CE);
        address token = address(0x70C3);
        bytes32 single = keccak256(abi.encode(account, token, uint256(100e6)));
        assertTrue(
            harness.leaf(account, token, 100e6) != keccak256(bytes.concat(single)), "single hash"
        );
    }

    function test_leaf_ignoresDirtyUpperAddressBits() public view {
        address account = address(0xA11CE);
        address token = address(0x70C3);
        uint256 dirt = type(uint256).max << 160;
        bytes32 clean = harness.leaf(account, token, 100e6);
        assertEq(
            harness.leafOfWords(uint256(uint160(account)), uint256(uint160(token)), 100e6),
            clean,
            "clean words"
        );
        assertEq(
            harness.leafOfWords(dirt | uint160(account), uint160(token), 100e6),
            clean,
            "dirty account"
        );
        assertEq(
            harness.leafOfWords(uint160(account), dirt | uint160(token), 100e6),
            clean,
            "dirty token"
        );
        assertEq(
            harness.leafOfWords(dirt | uint160(account), dirt | uint160(token), 100e6),
            clean,
            "both dirty"
        );
    }

    function testFuzz_leaf_ignoresDirtyUpperAddressBits(
        address account,
        address token,
        uint96 accountDirt,
        uint96 tokenDirt,
        uint256 indexAndAmount
    ) public view {
        accountDirt = uint96(bound(accountDirt, 1, type(uint96).max));
        uint256 accountWord = (uint256(accountDirt) << 160) | uint160(account);
        uint256 tokenWord = (uint256(tokenDirt) << 160) | uint160(token);
        assertEq(
            harness.leafOfWords(accountWord, tokenWord, indexAndAmount),
            PayoutTree.leaf(account, token, indexAndAmount),
            "dirty bits ignored"
        );
    }

    function test_leaf_matchesSharedVectors() public view {
        string memory json = vm.readFile("contracts/test/vectors/encoding.json");
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".payoutTree.indexes");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        bytes32 root = vm.parseJsonBytes32(json, ".payoutTree.root");

        for (uint256 i; i < accounts.length; ++i) {
            uint256 indexAndAmount = PayoutTree.pack(indexes[i], vm.parseUint(amounts[i]));
            bytes32 hash = harness.leaf(accounts[i], tokens[i], indexAndAmount);
            assertEq(hash, hashes[i], "leaf");
            bytes32[] memory proof = vm.parseJsonBytes32Array(
                json, string.concat(".payoutTree.proofs[", vm.toString(i), "]")
            );
            assertEq(harness.root(proof, hash), root, "vector proof reaches the root");
        }
    }

    // ---------------------------------------------------------------------------------
    // root
    // ---------------------------------------------------------------------------------

    function test_root_emptyProofIsTheLeaf() public view {
        bytes32 hash = keccak256("leaf");
        assertEq(harness.root(new bytes32[](0), hash), hash, "leaf is root");
        assertEq(harness.root(new bytes32[](0), bytes32(0)), bytes32(0), "zero is zero");
    }

    function test_root_siblingEqualToNode() public view {
        // The ordering tie: both libraries hash (x, x).
        bytes32 hash = keccak256("leaf");
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = hash;
        bytes32 expected = keccak256(abi.encode(hash, hash));
        assertEq(harness.processOz(proof, hash), expected, "OpenZeppelin");
        assertEq(harness.root(proof, hash), expected, "PayoutProof");
    }

    function test_root_hashesEachPairInAscendingOrder() public view {
        bytes32 small = bytes32(uint256(1));
        bytes32 large = bytes32(type(uint256).max);
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = large;
        assertEq(harness.root(proof, small), keccak256(abi.encode(small, large)), "leaf smaller");
        proof[0] = small;
        assertEq(harness.root(proof, large), keccak256(abi.encode(small, large)), "leaf larger");
    }

    function testFuzz_root_reachesTheTreeRootFromEveryLeaf(
        bytes32 seed,
        uint256 count,
        uint256 index
    ) public view {
        count = bound(count, 1, MAX_LEAVES);
        index = bound(index, 0, count - 1);
        bytes32[] memory leaves = _randomLeaves(seed, count);
        bytes32[] memory tree = PayoutTree.build(leaves);
        bytes32[] memory proof = PayoutTree.proofIn(tree, leaves[index]);

        assertEq(harness.processOz(proof, leaves[index]), tree[0], "OpenZeppelin");
        assertEq(harness.root(proof, leaves[index]), tree[0], "PayoutProof");
        assertTrue(harness.root(proof, ~leaves[index]) != tree[0], "other leaf");
    }

    function testFuzz_root_tamperedProofMissesTheRoot(
        bytes32 seed,
        uint256 count,
        uint256 index,
        uint256 position,
        uint8 bit
    ) public view {
        count = bound(count, 2, MAX_LEAVES);
        index = bound(index, 0, count - 1);
        bytes32[] memory leaves = _randomLeaves(seed, count);
        bytes32[] memory tree = PayoutTree.build(leaves);
        bytes32[] memory proof = PayoutTree.proofIn(tree, leaves[index]);
        position = bound(position, 0, proof.length - 1);

        proof[position] ^= bytes32(uint256(1) << bit);
        bytes32 reached = harness.root(proof, leaves[index]);
        assertTrue(reached != tree[0], "misses the root");
        // Not even its high half, which is all the escrow compares.
        assertTrue(reached >> 128 != tree[0] >> 128, "misses the high half");
        assertEq(reached, harness.processOz(proof, leaves[index]), "same as OpenZeppelin");
    }

    function testFuzz_root_truncatedOrExtendedProofMissesTheRoot(
        bytes32 seed,
        uint256 count,
        uint256 index,
        bytes32 extra
    ) public view {
        count = bound(count, 2, MAX_LEAVES);
        index = bound(index, 0, count - 1);
        bytes32[] memory leaves = _randomLeaves(seed, count);
        bytes32[] memory tree = PayoutTree.build(leaves);
        bytes32[] memory proof = PayoutTree.proofIn(tree, leaves[index]);

        bytes32[] memory truncated = new bytes32[](proof.length - 1);
        bytes32[] memory extended = new bytes32[](proof.length + 1);
        for (uint256 i; i < proof.length; ++i) {
            if (i < truncated.length) truncated[i] = proof[i];
            extended[i] = proof[i];
        }
        extended[proof.length] = extra;
        assertTrue(harness.root(truncated, leaves[index]) != tree[0], "truncated");
        assertTrue(harness.root(extended, leaves[index]) != tree[0], "extended");
        assertEq(
            harness.root(extended, leaves[index]),
            harness.processOz(extended, leaves[index]),
            "extended: same node"
        );
    }

    /// @dev Arbitrary proofs from an arbitrary leaf reach the same node either way.
    function testFuzz_root_agreesWithOpenZeppelin(bytes32[] calldata proof, bytes32 leafHash)
        public
        view
    {
        assertEq(harness.root(proof, leafHash), harness.processOz(proof, leafHash), "same node");
    }

    /// @dev Calldata slices start past the array's offset; the proof walk must follow them.
    function testFuzz_root_agreesOnCalldataSlices(
        bytes32 seed,
        uint256 count,
        uint256 index,
        uint256 start,
        uint256 end
    ) public view {
        count = bound(count, 2, MAX_LEAVES);
        index = bound(index, 0, count - 1);
        bytes32[] memory leaves = _randomLeaves(seed, count);
        bytes32[] memory tree = PayoutTree.build(leaves);
        bytes32[] memory proof = PayoutTree.proofIn(tree, leaves[index]);
        start = bound(start, 0, proof.length);
        end = bound(end, start, proof.length);

        (bytes32 ours, bytes32 theirs) = harness.rootOfSlice(proof, start, end, leaves[index]);
        assertEq(ours, theirs, "same node");
        if (start == 0) {
            assertEq(ours, _rootOfPrefix(proof, leaves[index], end), "prefix leads to its node");
        }
        (ours, theirs) = harness.rootOfSlice(proof, 0, proof.length, leaves[index]);
        assertEq(ours, tree[0], "whole proof as a slice");
        assertEq(theirs, tree[0], "whole proof as a slice, OpenZeppelin");
    }

    function _rootOfPrefix(bytes32[] memory proof, bytes32 leafHash, uint256 length)
        internal
        pure
        returns (bytes32 node)
    {
        node = leafHash;
        for (uint256 i; i < length; ++i) {
            node = node < proof[i]
                ? keccak256(abi.encode(node, proof[i]))
                : keccak256(abi.encode(proof[i], node));
        }
    }

    // ---------------------------------------------------------------------------------
    // memory safety
    // ---------------------------------------------------------------------------------

    function testFuzz_leafAndRoot_leaveMemoryAlone(
        bytes32[] calldata proof,
        address account,
        address token,
        uint256 indexAndAmount
    ) public view {
        assertTrue(
            harness.leavesMemoryAlone(proof, account, token, indexAndAmount), "memory intact"
        );
    }
}
