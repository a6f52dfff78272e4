// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Test} from "forge-std/Test.sol";
import {PayoutProof} from "../src/libraries/PayoutProof.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice Exposes PayoutProof and OpenZeppelin's MerkleProof side by side, so both read the
///         same calldata proof.
contract PayoutProofHarness {
    function leaf(address account, address token, uint256 cumulativeAmount)
        external
        pure
        returns (bytes32)
    {
        return PayoutProof.leaf(account, token, cumulativeAmount);
    }

    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash)
        external
        pure
        returns (bool)
    {
        return PayoutProof.verify(proof, root, leafHash);
    }

    /// @notice `leaf` on address values whose upper 96 bits may be set. The ABI decoder would
    ///      reject such addresses, so they are put on the stack through assembly, as other
    ///      assembly could leave them.
    function leafOfWords(uint256 accountWord, uint256 tokenWord, uint256 cumulativeAmount)
        external
        pure
        returns (bytes32)
    {
        address account;
        address token;
        assembly ("memory-safe") {
            account := accountWord
            token := tokenWord
        }
        return PayoutProof.leaf(account, token, cumulativeAmount);
    }

    function verifyOz(bytes32[] calldata proof, bytes32 root, bytes32 leafHash)
        external
        pure
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, root, leafHash);
    }

    function processOz(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leafHash);
    }

    /// @notice Both verdicts on the calldata slice `proof[start:end]`, which starts past the
    ///         array's own offset.
    function verifySlice(
        bytes32[] calldata proof,
        uint256 start,
        uint256 end,
        bytes32 root,
        bytes32 leafHash
    ) external pure returns (bool ours, bool theirs) {
        ours = PayoutProof.verify(proof[start:end], root, leafHash);
        theirs = MerkleProof.verifyCalldata(proof[start:end], root, leafHash);
    }

    /// @notice Runs `leaf` and `verify` between allocations and reports whether they left
    ///         allocated memory, the free memory pointer and the zero slot alone.
    function leavesMemoryAlone(
        bytes32[] calldata proof,
        address account,
        address token,
        uint256 cumulativeAmount
    ) external pure returns (bool) {
        bytes32[] memory guard = new bytes32[](4);
        for (uint256 i; i < guard.length; ++i) {
            guard[i] = bytes32(type(uint256).max - i);
        }
        uint256 freeBefore;
        assembly ("memory-safe") {
            freeBefore := mload(0x40)
        }

        bytes32 hash = PayoutProof.leaf(account, token, cumulativeAmount);
        PayoutProof.verify(proof, hash, hash);

        uint256 freeAfter;
        uint256 zeroSlot;
        assembly ("memory-safe") {
            freeAfter := mload(0x40)
            zeroSlot := mload(0x60)
        }
        if (freeAfter != freeBefore || zeroSlot != 0) return false;
        for (uint256 i; i < guard.length; ++i) {
            if (guard[i] != bytes32(type(uint256).max - i)) return false;
        }
        // A fresh allocation still starts zeroed and the hash kept its value.
        bytes32[] memory fresh = new bytes32[](3);
        return fresh[0] == 0 && fresh[2] == 0
            && hash
                == keccak256(bytes.concat(keccak256(abi.encode(account, token, cumulativeAmount))));
    }
}

/// @notice PayoutProof gives the same answers as OpenZeppelin's StandardMerkleTree leaf
///         formula and `MerkleProof.verifyCalldata`, on honest, tampered and random proofs.
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

    function testFuzz_leaf_matchesStandardMerkleTreeLeaf(
        address account,
        address token,
        uint256 cumulativeAmount
    ) public view {
        bytes32 expected = keccak256(
            bytes.concat(keccak256(abi.encode(account, token, cumulativeAmount)))
        );
        assertEq(harness.leaf(account, token, cumulativeAmount), expected, "leaf");
        assertEq(
            harness.leaf(account, token, cumulativeAmount),
            PayoutTree.leaf(account, token, cumulativeAmount),
            "same as the test tree builder"
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
        uint256 cumulativeAmount
    ) public view {
        accountDirt = uint96(bound(accountDirt, 1, type(uint96).max));
        uint256 accountWord = (uint256(accountDirt) << 160) | uint160(account);
        uint256 tokenWord = (uint256(tokenDirt) << 160) | uint160(token);
        assertEq(
            harness.leafOfWords(accountWord, tokenWord, cumulativeAmount),
            PayoutTree.leaf(account, token, cumulativeAmount),
            "dirty bits ignored"
        );
    }

    function test_leaf_matchesSharedVectors() public view {
        string memory json = vm.readFile("contracts/test/vectors/encoding.json");
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        bytes32 root = vm.parseJsonBytes32(json, ".payoutTree.root");

        for (uint256 i; i < accounts.length; ++i) {
            bytes32 hash = harness.leaf(accounts[i], tokens[i], vm.parseUint(amounts[i]));
            assertEq(hash, hashes[i], "leaf");
            bytes32[] memory proof = vm.parseJsonBytes32Array(
                json, string.concat(".payoutTree.proofs[", vm.toString(i), "]")
            );
            assertTrue(harness.verify(proof, root, hash), "vector proof verifies");
        }
    }

    // ---------------------------------------------------------------------------------
    // verify
    // ---------------------------------------------------------------------------------

    function test_verify_emptyProofMeansLeafIsRoot() public view {
        bytes32[] memory empty = new bytes32[](0);
        bytes32 hash = keccak256("leaf");
        assertTrue(harness.verify(empty, hash, hash), "leaf is root");
        assertFalse(harness.verify(empty, keccak256("other"), hash), "leaf is not root");
    }

    function test_verify_siblingEqualToNode() public view {
        // The ordering tie: both libraries hash (x, x).
        bytes32 hash = keccak256("leaf");
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = hash;
        bytes32 root = keccak256(abi.encode(hash, hash));
        assertTrue(harness.verifyOz(proof, root, hash), "OpenZeppelin");
        assertTrue(harness.verify(proof, root, hash), "PayoutProof");
    }

    function test_verify_zeroLeafAndRoot() public view {
        bytes32[] memory empty = new bytes32[](0);
        assertTrue(harness.verify(empty, bytes32(0), bytes32(0)), "zero is zero");
        bytes32[] memory proof = new bytes32[](1);
        assertFalse(harness.verify(proof, bytes32(0), bytes32(0)), "hash of zeros is not zero");
    }

    function testFuzz_verify_acceptsEveryProofOfRandomTree(
        bytes32 seed,
        uint256 count,
        uint256 index
    ) public view {
        count = bound(count, 1, MAX_LEAVES);
        index = bound(index, 0, count - 1);
        bytes32[] memory leaves = _randomLeaves(seed, count);
        bytes32[] memory tree = PayoutTree.build(leaves);
        bytes32[] memory proof = PayoutTree.proofIn(tree, leaves[index]);

        assertTrue(harness.verifyOz(proof, tree[0], leaves[index]), "OpenZeppelin accepts");
        assertTrue(harness.verify(proof, tree[0], leaves[index]), "PayoutProof accepts");
        assertFalse(harness.verify(proof, ~tree[0], leaves[index]), "other root");
        assertFalse(harness.verify(proof, tree[0], ~leaves[index]), "other leaf");
    }

    function testFuzz_verify_rejectsTamperedProof(
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
        assertFalse(harness.verifyOz(proof, tree[0], leaves[index]), "OpenZeppelin rejects");
        assertFalse(harness.verify(proof, tree[0], leaves[index]), "PayoutProof rejects");
    }

    function testFuzz_verify_rejectsTruncatedOrExtendedProof(
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
        assertFalse(harness.verify(truncated, tree[0], leaves[index]), "truncated");
        assertFalse(harness.verify(extended, tree[0], leaves[index]), "extended");
        assertEq(
            harness.verify(extended, tree[0], leaves[index]),
            harness.verifyOz(extended, tree[0], leaves[index]),
            "extended: same verdict"
        );
    }

    /// @dev Arbitrary proofs, against an arbitrary root or the one they actually lead to.
    function testFuzz_verify_agreesWithOpenZeppelin(
        bytes32[] calldata proof,
        bytes32 root,
        bytes32 leafHash,
        bool reachableRoot
    ) public view {
        if (reachableRoot) root = harness.processOz(proof, leafHash);
        bool theirs = harness.verifyOz(proof, root, leafHash);
        assertEq(harness.verify(proof, root, leafHash), theirs, "same verdict");
        if (reachableRoot) assertTrue(theirs, "reachable root verifies");
    }

    /// @dev Calldata slices start past the array's offset; the proof walk must follow them.
    function testFuzz_verify_agreesOnCalldataSlices(
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

        // The root the slice leads to, if the slice is the start of the proof.
        bytes32 root = start == 0 ? _rootOfPrefix(proof, leaves[index], end) : tree[0];
        (bool ours, bool theirs) = harness.verifySlice(proof, start, end, root, leaves[index]);
        assertEq(ours, theirs, "same verdict");
        if (start == 0) assertTrue(ours, "prefix leads to its node");
        (ours, theirs) = harness.verifySlice(proof, 0, proof.length, tree[0], leaves[index]);
        assertTrue(ours && theirs, "whole proof as a slice");
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

    function testFuzz_leafAndVerify_leaveMemoryAlone(
        bytes32[] calldata proof,
        address account,
        address token,
        uint256 cumulativeAmount
    ) public view {
        assertTrue(
            harness.leavesMemoryAlone(proof, account, token, cumulativeAmount), "memory intact"
        );
    }
}
