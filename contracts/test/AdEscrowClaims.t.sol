// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {AdEscrowTestBase} from "./utils/AdEscrowTestBase.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice The payee's side: claim, claimMany, and pausing them.
contract AdEscrowClaimsTest is AdEscrowTestBase {
    /// @dev Epoch 1 from `_settleFirstEpoch`: alice 100 usd + 200 eur, bob 200 usd.
    bytes32[] internal leaves1;

    function setUp() public override {
        super.setUp();
        leaves1 = _settleFirstEpoch();
    }

    function _proof(bytes32[] memory leaves, address account, uint256 cumulative)
        internal
        view
        returns (bytes32[] memory)
    {
        return PayoutTree.proof(leaves, _leaf(account, usd, cumulative));
    }

    /// @dev Epoch 2 pays alice 300 usd, bob 250 usd in total, debiting A by 250 more.
    function _settleSecondEpoch() internal returns (bytes32[] memory leaves2) {
        leaves2 =
            _leaves(_leaf(alice, usd, 300e6), _leaf(bob, usd, 250e6), _leaf(alice, eur, 200e6));
        _settle(2, PayoutTree.root(leaves2), _debits(CAMPAIGN_A, 250e6), _totals(usd, 250e6));
    }

    // ---------------------------------------------------------------------------------
    // claim
    // ---------------------------------------------------------------------------------

    function test_claim_paysCumulativeToAccountWhoeverCalls() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.Claimed(alice, address(usd), 100e6);
        vm.prank(stranger);
        uint256 amount = escrow.claim(alice, address(usd), 100e6, proof);

        assertEq(amount, 100e6, "amount");
        assertEq(usd.balanceOf(alice), 100e6, "alice balance");
        assertEq(usd.balanceOf(stranger), 0, "caller gets nothing");
        assertEq(escrow.claimed(alice, address(usd)), 100e6, "claimed");
        assertEq(_claimedTotal(usd), 100e6, "claimed total");
        assertEq(usd.balanceOf(address(escrow)), BUDGET - 100e6, "escrow balance");
    }

    function test_claim_replayPaysNothing() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        escrow.claim(alice, address(usd), 100e6, proof);

        vm.recordLogs();
        uint256 amount = escrow.claim(alice, address(usd), 100e6, proof);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(amount, 0, "amount");
        assertEq(logs.length, 0, "no event");
        assertEq(usd.balanceOf(alice), 100e6, "alice balance");
        assertEq(escrow.claimed(alice, address(usd)), 100e6, "claimed");
        assertEq(_claimedTotal(usd), 100e6, "claimed total");
    }

    function test_claim_laterEpochPaysTheDifference() public {
        _claim(alice, usd, 100e6, leaves1);
        bytes32[] memory leaves2 = _settleSecondEpoch();

        vm.expectEmit(address(escrow));
        emit IAdEscrow.Claimed(alice, address(usd), 300e6);
        assertEq(_claim(alice, usd, 300e6, leaves2), 200e6, "difference");
        assertEq(usd.balanceOf(alice), 300e6, "alice balance");
        assertEq(escrow.claimed(alice, address(usd)), 300e6, "claimed");
    }

    function test_claim_previousRootStillWorksAfterRotation() public {
        _settleSecondEpoch();
        // Bob built his proof against epoch 1 just before epoch 2 landed.
        assertEq(_claim(bob, usd, 200e6, leaves1), 200e6, "paid from previous root");
        // Alice's eur leaf is in both trees; the old proof still works.
        assertEq(_claim(alice, eur, 200e6, leaves1), 200e6, "eur from previous root");
    }

    function test_claim_previousRootOnlyPaysUpToItsCumulative() public {
        bytes32[] memory leaves2 = _settleSecondEpoch();
        _claim(alice, usd, 300e6, leaves2);
        // The stale epoch 1 proof is still valid but pays nothing any more.
        assertEq(_claim(alice, usd, 100e6, leaves1), 0, "stale proof pays nothing");
        assertEq(usd.balanceOf(alice), 300e6, "alice balance");
    }

    function test_claim_revertsOnRootTwoRotationsOld() public {
        _settleSecondEpoch();
        bytes32[] memory leaves3 = _leaves(_leaf(alice, usd, 350e6), _leaf(bob, usd, 250e6));
        _settle(3, PayoutTree.root(leaves3), _debits(CAMPAIGN_A, 50e6), _totals(usd, 50e6));

        bytes32[] memory proof = _proof(leaves1, bob, 200e6);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(bob, address(usd), 200e6, proof);
    }

    function test_claim_revertsOnInvalidProof() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        // Wrong amount.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(usd), 100e6 + 1, proof);
        // Wrong account.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(carol, address(usd), 100e6, proof);
        // Wrong token.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(eur), 100e6, proof);
        // Tampered proof.
        proof[0] = bytes32(uint256(proof[0]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(usd), 100e6, proof);
    }

    function test_claim_revertsWithoutRoot() public {
        // A fresh escrow that never settled.
        super.setUp();
        bytes32[] memory proof = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNoRoot.selector));
        escrow.claim(alice, address(usd), 100e6, proof);
    }

    function test_claim_revertsWhilePaused() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.claim(alice, address(usd), 100e6, proof);
    }

    function test_claim_revertsBeyondSettledTotal() public {
        // A fresh escrow and a dishonest tree promising 100 + 150 usd when the epoch
        // debited 200.
        super.setUp();
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        bytes32[] memory leaves = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 150e6));
        _settle(1, PayoutTree.root(leaves), _debits(CAMPAIGN_A, 200e6), _totals(usd, 200e6));

        assertEq(_claim(alice, usd, 100e6, leaves), 100e6, "first claim fits");
        bytes32[] memory proof = _proof(leaves, bob, 150e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(bob, address(usd), 150e6, proof);
        assertEq(_claimedTotal(usd), 100e6, "claimed total");
    }

    function test_claim_revertsOnLeafAboveSettledTotal() public {
        bytes32[] memory leaves = _leaves(_leaf(carol, usd, 301e6), _leaf(alice, usd, 0));
        _settle(2, PayoutTree.root(leaves), new IAdEscrow.Debit[](0), new IAdEscrow.TokenTotal[](0));
        bytes32[] memory proof = _proof(leaves, carol, 301e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(carol, address(usd), 301e6, proof);
    }

    // ---------------------------------------------------------------------------------
    // claimMany
    // ---------------------------------------------------------------------------------

    function test_claimMany_paysSeveralAccountsAndTokens() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](3);
        claims[0] = IAdEscrow.Claim(alice, address(usd), 100e6, _proof(leaves1, alice, 100e6));
        claims[1] = IAdEscrow.Claim(bob, address(usd), 200e6, _proof(leaves1, bob, 200e6));
        claims[2] = IAdEscrow.Claim(
            alice, address(eur), 200e6, PayoutTree.proof(leaves1, _leaf(alice, eur, 200e6))
        );

        vm.prank(stranger);
        uint256[] memory amounts = escrow.claimMany(claims);

        assertEq(amounts.length, 3, "amounts length");
        assertEq(amounts[0], 100e6, "alice usd amount");
        assertEq(amounts[1], 200e6, "bob usd amount");
        assertEq(amounts[2], 200e6, "alice eur amount");
        assertEq(usd.balanceOf(alice), 100e6, "alice usd");
        assertEq(usd.balanceOf(bob), 200e6, "bob usd");
        assertEq(eur.balanceOf(alice), 200e6, "alice eur");
        assertEq(_claimedTotal(usd), 300e6, "usd claimed total");
        assertEq(_claimedTotal(eur), 200e6, "eur claimed total");
    }

    function test_claimMany_repeatedEntryPaysOnce() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](2);
        claims[0] = IAdEscrow.Claim(bob, address(usd), 200e6, _proof(leaves1, bob, 200e6));
        claims[1] = claims[0];
        uint256[] memory amounts = escrow.claimMany(claims);
        assertEq(amounts[0], 200e6, "first");
        assertEq(amounts[1], 0, "repeat");
        assertEq(usd.balanceOf(bob), 200e6, "bob usd");
    }

    function test_claimMany_revertsAllOnOneBadProof() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](2);
        claims[0] = IAdEscrow.Claim(bob, address(usd), 200e6, _proof(leaves1, bob, 200e6));
        claims[1] = IAdEscrow.Claim(alice, address(usd), 1, _proof(leaves1, alice, 100e6));
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claimMany(claims);
        assertEq(usd.balanceOf(bob), 0, "bob unpaid");
    }

    function test_claimMany_emptyBatchReturnsNothing() public {
        uint256[] memory amounts = escrow.claimMany(new IAdEscrow.Claim[](0));
        assertEq(amounts.length, 0, "amounts length");
    }

    // ---------------------------------------------------------------------------------
    // pause / unpause
    // ---------------------------------------------------------------------------------

    function test_pause_hidesRootsAndUnpauseRestoresThem() public {
        bytes32[] memory leaves2 = _settleSecondEpoch();

        vm.expectEmit(address(escrow));
        emit IAdEscrow.PauseSet(true);
        vm.prank(guardian);
        escrow.pause();

        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        (,,,, bool paused) = escrow.settlementState();
        assertEq(current, bytes32(0), "current hidden");
        assertEq(previous, bytes32(0), "previous hidden");
        assertTrue(paused, "paused");

        vm.expectEmit(address(escrow));
        emit IAdEscrow.PauseSet(false);
        vm.prank(guardian);
        escrow.unpause();

        (current, previous) = escrow.claimableRoots();
        (,,,, paused) = escrow.settlementState();
        assertEq(current, PayoutTree.root(leaves2), "current restored");
        assertEq(previous, PayoutTree.root(leaves1), "previous restored");
        assertFalse(paused, "unpaused");
    }

    function test_unpause_claimsResumeWithSameRoot() public {
        bytes32[] memory proof = _proof(leaves1, bob, 200e6);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.claim(bob, address(usd), 200e6, proof);

        vm.prank(guardian);
        escrow.unpause();
        assertEq(escrow.claim(bob, address(usd), 200e6, proof), 200e6, "paid after unpause");
    }

    function test_pause_isIdempotent() public {
        vm.startPrank(guardian);
        escrow.pause();
        vm.recordLogs();
        escrow.pause();
        assertEq(vm.getRecordedLogs().length, 0, "second pause emits nothing");
        escrow.unpause();
        vm.recordLogs();
        escrow.unpause();
        assertEq(vm.getRecordedLogs().length, 0, "second unpause emits nothing");
        vm.stopPrank();
        assertEq(_currentRoot(), PayoutTree.root(leaves1), "root survives double pause");
    }

    function test_pause_revertsForNonGuardian() public {
        bytes32 role = escrow.GUARDIAN_ROLE();
        for (uint256 i; i < 3; ++i) {
            address caller = [admin, settler, stranger][i];
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role
                )
            );
            vm.prank(caller);
            escrow.pause();
        }
    }

    function test_unpause_revertsForNonGuardian() public {
        vm.prank(guardian);
        escrow.pause();
        bytes32 role = escrow.GUARDIAN_ROLE();
        for (uint256 i; i < 3; ++i) {
            address caller = [admin, settler, stranger][i];
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role
                )
            );
            vm.prank(caller);
            escrow.unpause();
        }
    }

    function test_pause_withoutRootStillReportsPaused() public {
        // A fresh escrow that never settled.
        super.setUp();
        vm.prank(guardian);
        escrow.pause();
        bytes32[] memory proof = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.claim(alice, address(usd), 1, proof);
        vm.prank(guardian);
        escrow.unpause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNoRoot.selector));
        escrow.claim(alice, address(usd), 1, proof);
    }
}

/// @notice The Solidity tree builder the claim tests use agrees with the Rust one: same
///         leaves, same root, same proofs for the shared vectors (docs/ENCODING.md).
contract PayoutTreeTest is Test {
    function test_build_matchesSharedVectors() public view {
        string memory json = vm.readFile("contracts/test/vectors/encoding.json");
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");

        bytes32[] memory leaves = new bytes32[](accounts.length);
        for (uint256 i; i < leaves.length; ++i) {
            leaves[i] = PayoutTree.leaf(accounts[i], tokens[i], vm.parseUint(amounts[i]));
            assertEq(leaves[i], hashes[i], "leaf");
        }
        bytes32[] memory tree = PayoutTree.build(leaves);
        assertEq(tree[0], vm.parseJsonBytes32(json, ".payoutTree.root"), "root");
        for (uint256 i; i < leaves.length; ++i) {
            bytes32[] memory expected = vm.parseJsonBytes32Array(
                json, string.concat(".payoutTree.proofs[", vm.toString(i), "]")
            );
            assertEq(PayoutTree.proofIn(tree, leaves[i]), expected, "proof");
        }
    }

    function test_build_singleLeafIsItsOwnRoot() public pure {
        bytes32[] memory leaves = new bytes32[](1);
        leaves[0] = keccak256("only");
        assertEq(PayoutTree.root(leaves), leaves[0], "root");
        assertEq(PayoutTree.proof(leaves, leaves[0]).length, 0, "empty proof");
    }
}
