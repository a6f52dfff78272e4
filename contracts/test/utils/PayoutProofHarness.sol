// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {PayoutProof} from "../../src/libraries/PayoutProof.sol";

/// @notice Exposes PayoutProof and OpenZeppelin's MerkleProof side by side, so both read the
///         same calldata proof.
contract PayoutProofHarness {
    function leaf(address account, address token, uint256 indexAndAmount)
        external
        pure
        returns (bytes32)
    {
        return PayoutProof.leaf(account, token, indexAndAmount);
    }

    function root(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return PayoutProof.root(proof, leafHash);
    }

    /// @notice `leaf` on address values whose upper 96 bits may be set. The ABI decoder would
    ///      reject such addresses, so they are put on the stack through assembly, as other
    ///      assembly could leave them.
    function leafOfWords(uint256 accountWord, uint256 tokenWord, uint256 indexAndAmount)
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
        return PayoutProof.leaf(account, token, indexAndAmount);
    }

    function processOz(bytes32[] calldata proof, bytes32 leafHash) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leafHash);
    }

    /// @notice Both walks of the calldata slice `proof[start:end]`, which starts past the
    ///         array's own offset.
    function rootOfSlice(bytes32[] calldata proof, uint256 start, uint256 end, bytes32 leafHash)
        external
        pure
        returns (bytes32 ours, bytes32 theirs)
    {
        ours = PayoutProof.root(proof[start:end], leafHash);
        theirs = MerkleProof.processProofCalldata(proof[start:end], leafHash);
    }

    /// @notice Runs `leaf` and `root` between allocations and reports whether they left
    ///         allocated memory, the free memory pointer and the zero slot alone.
    function leavesMemoryAlone(
        bytes32[] calldata proof,
        address account,
        address token,
        uint256 indexAndAmount
    ) external pure returns (bool) {
        bytes32[] memory guard = new bytes32[](4);
        for (uint256 i; i < guard.length; ++i) {
            guard[i] = bytes32(type(uint256).max - i);
        }
        uint256 freeBefore;
        assembly ("memory-safe") {
            freeBefore := mload(0x40)
        }

        bytes32 hash = PayoutProof.leaf(account, token, indexAndAmount);
        bytes32 reached = PayoutProof.root(proof, hash);

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
        // A fresh allocation still starts zeroed, and the results kept their values.
        bytes32[] memory fresh = new bytes32[](3);
        return fresh[0] == 0 && fresh[2] == 0
            && hash == keccak256(abi.encode(account, token, indexAndAmount))
            && reached == MerkleProof.processProofCalldata(proof, hash);
    }
}
