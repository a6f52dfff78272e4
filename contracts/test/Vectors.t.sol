// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ConsentRegistry} from "../src/ConsentRegistry.sol";

/// @notice Checks the shared encoding vectors (docs/ENCODING.md) with the contracts' own
///         code; the Rust tests check the same file against the Rust side.
contract VectorsTest is Test {
    string internal json;

    function setUp() public {
        json = vm.readFile("contracts/test/vectors/encoding.json");
    }

    function test_payoutTree_leavesHashLikeTheEscrow() public view {
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        assertEq(accounts.length, hashes.length, "one hash per leaf");
        for (uint256 i; i < accounts.length; ++i) {
            bytes32 leaf = keccak256(
                bytes.concat(
                    keccak256(abi.encode(accounts[i], tokens[i], vm.parseUint(amounts[i])))
                )
            );
            assertEq(leaf, hashes[i], "leaf hash");
        }
    }

    function test_payoutTree_everyProofLeadsToTheRoot() public view {
        bytes32 root = vm.parseJsonBytes32(json, ".payoutTree.root");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        for (uint256 i; i < hashes.length; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(
                json, string.concat(".payoutTree.proofs[", vm.toString(i), "]")
            );
            assertTrue(MerkleProof.verify(proof, root, hashes[i]), "proof verifies");
        }
    }

    /// The registry deployed where the vectors say, on their chain, has the same domain and
    /// accepts the vector signatures.
    function test_consent_digestsAndSignaturesMatchTheRegistry() public {
        vm.chainId(vm.parseJsonUint(json, ".consent.chainId"));
        address registryAddress = vm.parseJsonAddress(json, ".consent.registry");
        deployCodeTo("ConsentRegistry.sol:ConsentRegistry", registryAddress);
        ConsentRegistry registry = ConsentRegistry(registryAddress);
        assertEq(
            registry.DOMAIN_SEPARATOR(),
            vm.parseJsonBytes32(json, ".consent.domainSeparator"),
            "domain"
        );

        address user = vm.parseJsonAddress(json, ".consent.user");
        bytes32 scope = vm.parseJsonBytes32(json, ".consent.scope");
        uint64 expiry = uint64(vm.parseJsonUint(json, ".consent.grant.expiry"));
        uint256 deadline = vm.parseUint(vm.parseJsonString(json, ".consent.grant.deadline"));
        bytes32 grantHash =
            keccak256(abi.encode(registry.GRANT_TYPEHASH(), user, scope, expiry, 0, deadline));
        assertEq(
            _digest(registry.DOMAIN_SEPARATOR(), grantHash),
            vm.parseJsonBytes32(json, ".consent.grant.digest"),
            "grant digest"
        );
        bytes32 revocationHash =
            keccak256(abi.encode(registry.REVOCATION_TYPEHASH(), user, scope, 1, deadline));
        assertEq(
            _digest(registry.DOMAIN_SEPARATOR(), revocationHash),
            vm.parseJsonBytes32(json, ".consent.revocation.digest"),
            "revocation digest"
        );

        vm.warp(deadline - 1);
        registry.grantBySig(
            user, scope, expiry, 0, deadline, vm.parseJsonBytes(json, ".consent.grant.signature")
        );
        assertTrue(registry.hasConsent(user, scope), "granted by the vector signature");
        registry.revokeBySig(
            user, scope, 1, deadline, vm.parseJsonBytes(json, ".consent.revocation.signature")
        );
        assertFalse(registry.hasConsent(user, scope), "revoked by the vector signature");
    }

    function test_receiptBatch_digestMatches() public view {
        bytes32 domainSeparator = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("adescrow receipts"),
                keccak256("1"),
                vm.parseJsonUint(json, ".receiptBatch.chainId"),
                vm.parseJsonAddress(json, ".receiptBatch.escrow")
            )
        );
        assertEq(
            domainSeparator, vm.parseJsonBytes32(json, ".receiptBatch.domainSeparator"), "domain"
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "ReceiptBatch(address hoster,address witness,uint64 sequence,bytes32 receiptsHash)"
                ),
                vm.parseJsonAddress(json, ".receiptBatch.hoster"),
                vm.parseJsonAddress(json, ".receiptBatch.witness"),
                vm.parseJsonUint(json, ".receiptBatch.sequence"),
                vm.parseJsonBytes32(json, ".receiptBatch.receiptsHash")
            )
        );
        assertEq(
            _digest(domainSeparator, structHash),
            vm.parseJsonBytes32(json, ".receiptBatch.digest"),
            "digest"
        );
    }

    function _digest(bytes32 domainSeparator, bytes32 structHash) private pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }
}
