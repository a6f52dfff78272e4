// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {AdEscrow} from "../src/AdEscrow.sol";
import {ConsentRegistry} from "../src/ConsentRegistry.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {PayoutProof} from "../src/libraries/PayoutProof.sol";
import {TestToken} from "./mocks/TestToken.sol";
import {PayoutProofHarness} from "./utils/PayoutProofHarness.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

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
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".payoutTree.indexes");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        assertEq(accounts.length, hashes.length, "one hash per leaf");
        assertEq(tokens.length, hashes.length, "one token per leaf");
        assertEq(indexes.length, hashes.length, "one index per leaf");
        assertEq(amounts.length, hashes.length, "one amount per leaf");
        for (uint256 i; i < accounts.length; ++i) {
            uint256 amount = vm.parseUint(amounts[i]);
            assertLt(indexes[i], 2 ** 128, "index fits its 128 bits");
            assertLt(amount, 2 ** 128, "amount fits its 128 bits");
            bytes32 leaf = PayoutProof.leaf(accounts[i], tokens[i], indexes[i] << 128 | amount);
            assertEq(leaf, hashes[i], "leaf hash");
            // Spelled out: one keccak of the ABI encoding, the index above the amount.
            assertEq(
                leaf,
                keccak256(abi.encode(accounts[i], tokens[i], indexes[i] << 128 | amount)),
                "the documented formula"
            );
        }
    }

    /// @dev Each (account, token) has its own index, and no index is given twice: the escrow
    ///      keys what was claimed by index alone.
    function test_payoutTree_indexesAreOnePerAccountAndToken() public view {
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".payoutTree.indexes");
        for (uint256 i; i < indexes.length; ++i) {
            for (uint256 j; j < i; ++j) {
                assertTrue(indexes[i] != indexes[j], "index given twice");
                assertTrue(
                    accounts[i] != accounts[j] || tokens[i] != tokens[j], "one leaf per payee"
                );
            }
        }
    }

    function test_payoutTree_everyProofLeadsToTheRoot() public {
        PayoutProofHarness harness = new PayoutProofHarness();
        bytes32 root = vm.parseJsonBytes32(json, ".payoutTree.root");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");
        for (uint256 i; i < hashes.length; ++i) {
            bytes32[] memory proof = _vectorProof(i);
            assertEq(harness.root(proof, hashes[i]), root, "PayoutProof reaches the root");
            assertTrue(MerkleProof.verify(proof, root, hashes[i]), "OpenZeppelin agrees");
        }
    }

    /// @dev End to end: the vector tokens deployed where the vectors put them, an escrow
    ///      settling the vector root, and every vector leaf claimed with its vector proof.
    function test_payoutTree_escrowPaysEveryLeafWithItsProof() public {
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".payoutTree.indexes");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32 root = vm.parseJsonBytes32(json, ".payoutTree.root");

        address settler = makeAddr("settler");
        AdEscrow escrow = new AdEscrow(address(this), 7 days, 0);
        escrow.grantRole(escrow.SETTLER_ROLE(), settler);

        // One campaign per vector token, funded with exactly what its leaves add up to.
        address[2] memory distinct = [tokens[0], tokens[tokens.length - 1]];
        IAdEscrow.Debit[] memory debits = new IAdEscrow.Debit[](2);
        IAdEscrow.TokenTotal[] memory totals = new IAdEscrow.TokenTotal[](2);
        for (uint256 t; t < 2; ++t) {
            deployCodeTo("TestToken.sol:TestToken", abi.encode("Vector", "VEC"), distinct[t]);
            uint256 sum;
            for (uint256 i; i < tokens.length; ++i) {
                if (tokens[i] == distinct[t]) sum += vm.parseUint(amounts[i]);
            }
            bytes32 id = keccak256(abi.encode("vector campaign", t));
            TestToken(distinct[t]).mint(address(this), sum);
            TestToken(distinct[t]).approve(address(escrow), sum);
            escrow.openCampaign(id, distinct[t], sum, uint40(block.timestamp + 1 days));
            debits[t] = IAdEscrow.Debit(id, sum);
            totals[t] = IAdEscrow.TokenTotal(distinct[t], sum);
        }
        vm.prank(settler);
        escrow.settle(1, root, debits, totals);

        for (uint256 i; i < accounts.length; ++i) {
            uint256 amount = vm.parseUint(amounts[i]);
            uint256 paid = escrow.claim(
                accounts[i], tokens[i], PayoutTree.pack(indexes[i], amount), _vectorProof(i)
            );
            assertEq(paid, amount, "paid the vector amount");
            assertEq(escrow.claimed(indexes[i]), amount, "claimed at the vector index");
            assertEq(TestToken(tokens[i]).balanceOf(accounts[i]), amount, "received");
        }
        for (uint256 t; t < 2; ++t) {
            assertEq(TestToken(distinct[t]).balanceOf(address(escrow)), 0, "all paid out");
        }
    }

    function _vectorProof(uint256 i) private view returns (bytes32[] memory) {
        return
            vm.parseJsonBytes32Array(
                json, string.concat(".payoutTree.proofs[", vm.toString(i), "]")
            );
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

    function test_receiptBatch_receiptHashesMatch() public view {
        bytes32[] memory expected = vm.parseJsonBytes32Array(json, ".receiptBatch.receiptHashes");
        bytes memory packed;
        for (uint256 i = 0; i < expected.length; i++) {
            string memory at = string.concat(".receiptBatch.receipts[", vm.toString(i), "]");
            bytes32 receiptHash = keccak256(
                abi.encode(
                    keccak256(bytes(vm.parseJsonString(json, string.concat(at, ".ticket")))),
                    uint8(vm.parseJsonUint(json, string.concat(at, ".event"))),
                    uint64(vm.parseJsonUint(json, string.concat(at, ".at"))),
                    keccak256(bytes(vm.parseJsonString(json, string.concat(at, ".viewer")))),
                    keccak256(bytes(vm.parseJsonString(json, string.concat(at, ".orderRef"))))
                )
            );
            assertEq(receiptHash, expected[i], "receipt hash");
            packed = bytes.concat(packed, receiptHash);
        }
        assertEq(
            keccak256(packed),
            vm.parseJsonBytes32(json, ".receiptBatch.receiptsHash"),
            "receipts hash"
        );
    }

    function test_receiptBatch_confirmedBitmapMatches() public view {
        bytes memory confirmed = vm.parseJsonBytes(json, ".receiptBatch.confirmed");
        uint256 receipts = vm.parseJsonBytes32Array(json, ".receiptBatch.receiptHashes").length;
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".receiptBatch.confirmedIndexes");
        assertEq(confirmed.length, (receipts + 7) / 8, "length");
        bytes memory expected = new bytes(confirmed.length);
        for (uint256 i = 0; i < indexes.length; i++) {
            expected[indexes[i] / 8] |= bytes1(uint8(1 << (indexes[i] % 8)));
        }
        assertEq(confirmed, expected, "bits");
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
        address hoster = vm.parseJsonAddress(json, ".receiptBatch.hoster");
        uint256 sequence = vm.parseJsonUint(json, ".receiptBatch.sequence");
        bytes32 receiptsHash = vm.parseJsonBytes32(json, ".receiptBatch.receiptsHash");
        assertEq(
            _digest(
                domainSeparator,
                _receiptBatchHash(
                    hoster,
                    vm.parseJsonAddress(json, ".receiptBatch.witness"),
                    sequence,
                    receiptsHash,
                    vm.parseJsonBytes(json, ".receiptBatch.confirmed")
                )
            ),
            vm.parseJsonBytes32(json, ".receiptBatch.digest"),
            "digest"
        );
        assertEq(
            _digest(
                domainSeparator, _receiptBatchHash(hoster, address(0), sequence, receiptsHash, "")
            ),
            vm.parseJsonBytes32(json, ".receiptBatch.unwitnessedDigest"),
            "unwitnessed digest"
        );
    }

    function _receiptBatchHash(
        address hoster,
        address witness,
        uint256 sequence,
        bytes32 receiptsHash,
        bytes memory confirmed
    ) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(
                    "ReceiptBatch(address hoster,address witness,uint64 sequence,bytes32 receiptsHash,bytes confirmed)"
                ),
                hoster,
                witness,
                sequence,
                receiptsHash,
                keccak256(confirmed)
            )
        );
    }

    function _digest(bytes32 domainSeparator, bytes32 structHash) private pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator, structHash));
    }
}
