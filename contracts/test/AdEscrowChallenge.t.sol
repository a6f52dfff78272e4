// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";

/// @notice The challenge window: activate, and the guardian's revoke.
contract AdEscrowChallengeTest is SettlementFixture {
    // ---------------------------------------------------------------------------------
    // activate
    // ---------------------------------------------------------------------------------

    function test_activate_revertsWithNothingPending() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNotClaimableYet.selector, 0));
        escrow.activate();
    }

    function test_activate_revertsInsideWindow() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        uint40 claimableAt = _pendingClaimableAt();
        vm.warp(claimableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNotClaimableYet.selector, claimableAt)
        );
        escrow.activate();
    }

    function test_activate_revertsWhilePaused() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        vm.warp(_pendingClaimableAt());
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.activate();
    }

    function test_activate_promotesPendingAndKeepsPreviousRoot() public {
        bytes32[] memory leaves1 = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 50e6));
        bytes32[] memory leaves2 = _leaves(_leaf(alice, usd, 150e6), _leaf(bob, usd, 150e6));
        _settle(1, PayoutTree.root(leaves1), _debits(CAMPAIGN_A, 150e6), _totals(usd, 150e6));
        _setWindow(WINDOW);
        _settle(2, PayoutTree.root(leaves2), _debits(CAMPAIGN_C, 150e6), _totals(usd, 150e6));

        // Only epoch 1 is claimable while epoch 2 waits.
        bytes32[] memory proof2 = PayoutTree.proof(leaves2, _leaf(alice, usd, 150e6));
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(usd), 150e6, proof2);

        vm.warp(_pendingClaimableAt());
        vm.prank(stranger);
        escrow.activate();

        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(current, PayoutTree.root(leaves2), "current root");
        assertEq(previous, PayoutTree.root(leaves1), "previous root kept");
        assertEq(pending, bytes32(0), "nothing pending");
        assertEq(_currentEpoch(), 2, "current epoch");
        assertEq(_pendingClaimableAt(), 0, "claimable at cleared");

        assertEq(escrow.claim(alice, address(usd), 150e6, proof2), 150e6, "alice paid");
        assertEq(_claim(bob, usd, 50e6, leaves1), 50e6, "bob paid from previous root");
        assertEq(_claim(bob, usd, 150e6, leaves2), 100e6, "bob paid the rest");
    }

    // ---------------------------------------------------------------------------------
    // revoke
    // ---------------------------------------------------------------------------------

    function test_revoke_restoresBudgetsAndSettledTotals() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6));
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6, eur, 200e6);
        _settle(2, ROOT_2, debits, totals);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.SettlementRevoked(2, ROOT_2);
        _revoke(2, debits, totals);

        assertEq(_remaining(CAMPAIGN_A), BUDGET - 100e6, "A restored");
        assertEq(_remaining(CAMPAIGN_B), BUDGET, "B restored");
        assertEq(_settled(usd), 100e6, "usd settled");
        assertEq(_settled(eur), 0, "eur settled");
        (bytes32 pending, bytes32 commitment) = escrow.pendingRoot();
        assertEq(pending, bytes32(0), "pending root");
        assertEq(commitment, bytes32(0), "commitment");
        assertEq(_pendingClaimableAt(), 0, "claimable at");
        assertEq(_currentRoot(), ROOT_1, "current root untouched");
        assertEq(_lastEpoch(), 2, "epoch stays used");
        assertEq(_currentEpoch(), 1, "current epoch");
    }

    function test_revoke_nextSettlementIsEpochPlusOne() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        _revoke(1, debits, totals);

        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowWrongEpoch.selector, 2, 1));
        _settle(1, ROOT_1, debits, totals);
        _settle(2, ROOT_2, debits, totals);
        assertEq(_lastEpoch(), 2, "last epoch");
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, ROOT_2, "pending root");
    }

    function test_revoke_worksUntilLastSecondOfWindow() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt() - 1);
        _revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "restored");
        assertEq(_settled(usd), 0, "usd settled");
    }

    function test_revoke_revertsOnceWindowOver() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        uint40 claimableAt = _pendingClaimableAt();

        // Unpaused, from the second the root becomes claimable it is final, activated or not.
        vm.warp(claimableAt);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, claimableAt)
        );
        _revoke(1, debits, totals);

        // Checked before the commitment: wrong debits get the same answer.
        vm.warp(claimableAt + 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, claimableAt)
        );
        _revoke(1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
        assertEq(_settled(usd), 300e6, "usd settled");
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, ROOT_1, "still pending");

        escrow.activate();
        assertEq(_currentRoot(), ROOT_1, "activated");
    }

    function test_revoke_revertsOnceWindowOverEvenIfNextWindowIsLonger() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        uint40 claimableAt = _pendingClaimableAt();
        // A longer window applies to later settlements only.
        _setWindow(7 days);
        vm.warp(claimableAt);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, claimableAt)
        );
        _revoke(1, debits, totals);
    }

    function test_revoke_worksWhilePaused() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.prank(guardian);
        escrow.pause();
        _revoke(1, debits, totals);
        assertEq(_settled(usd), 0, "settled");
    }

    function test_revoke_worksAfterWindowWhilePaused() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6, eur, 200e6);
        _settle(1, ROOT_1, debits, totals);
        uint40 claimableAt = _pendingClaimableAt();

        // Paused inside the window: the clock stops, nothing can activate the root.
        vm.prank(guardian);
        escrow.pause();
        vm.warp(claimableAt);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.activate();

        // Long after the window the guardian can still revoke.
        vm.warp(uint256(claimableAt) + 30 days);
        vm.expectEmit(address(escrow));
        emit IAdEscrow.SettlementRevoked(1, ROOT_1);
        _revoke(1, debits, totals);

        assertEq(_remaining(CAMPAIGN_A), BUDGET, "A restored");
        assertEq(_remaining(CAMPAIGN_B), BUDGET, "B restored");
        assertEq(_settled(usd), 0, "usd settled");
        assertEq(_settled(eur), 0, "eur settled");
        (bytes32 pending, bytes32 commitment) = escrow.pendingRoot();
        assertEq(pending, bytes32(0), "pending root");
        assertEq(commitment, bytes32(0), "commitment");
        assertEq(_pendingClaimableAt(), 0, "claimable at");
        assertEq(_lastEpoch(), 1, "epoch stays used");
        assertEq(_currentEpoch(), 0, "current epoch");

        // Once unpaused there is nothing to activate, and the next epoch is 2.
        vm.prank(guardian);
        escrow.unpause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNotClaimableYet.selector, 0));
        escrow.activate();
        assertEq(_currentRoot(), bytes32(0), "no root");
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6));
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 100e6, "A debited by epoch 2");
    }

    /// @dev The pause need not start inside the window: a root whose window is over but that
    ///      nobody activated can be revoked by pausing first.
    function test_revoke_revertsWhenPausedOnlyAfterWindowEnded() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        uint40 claimableAt = _pendingClaimableAt();

        // A pause that begins after the window cannot reopen it.
        vm.warp(uint256(claimableAt) + 1 days);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, claimableAt)
        );
        _revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
    }

    function test_revoke_worksWhilePausedAfterWindowWhenPausedInside() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(uint256(_pendingClaimableAt()) - 1);
        vm.prank(guardian);
        escrow.pause();
        vm.warp(block.timestamp + 30 days);

        _revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "restored");
        assertEq(_settled(usd), 0, "usd settled");
    }

    function test_revoke_revertsAfterWindowOnceUnpaused() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        uint40 claimableAt = _pendingClaimableAt();
        uint256 pausedAt = block.timestamp;
        vm.prank(guardian);
        escrow.pause();
        vm.warp(uint256(claimableAt) + 1 days);

        // Unpausing resumes the clock with the whole window it had left when paused.
        vm.prank(guardian);
        escrow.unpause();
        uint40 resumedAt = uint40(block.timestamp + (claimableAt - pausedAt));
        assertEq(_pendingClaimableAt(), resumedAt, "window moved by the pause");
        vm.warp(resumedAt);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, resumedAt)
        );
        _revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
        assertEq(_settled(usd), 300e6, "usd settled");

        escrow.activate();
        assertEq(_currentRoot(), ROOT_1, "activated");
    }

    function test_revoke_revertsAfterActivationEvenWhilePaused() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt());
        escrow.activate();

        // Pausing does not reopen an activated root.
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 1));
        _revoke(1, debits, totals);
        assertEq(_settled(usd), 300e6, "usd settled");
    }

    function test_revoke_checksCommitmentAfterWindowWhilePaused() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));
        vm.prank(guardian);
        escrow.pause();
        vm.warp(uint256(_pendingClaimableAt()) + 1 days);

        // The pause lifts the clock, not the commitment: a larger debit still cannot be restored.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
        _revoke(1, _debits(CAMPAIGN_A, 301e6), _totals(usd, 300e6));
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
    }

    function test_revoke_revertsForNonGuardian() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        bytes32 role = escrow.GUARDIAN_ROLE();
        for (uint256 i; i < 3; ++i) {
            address caller = [admin, settler, stranger][i];
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role
                )
            );
            vm.prank(caller);
            escrow.revoke(1, debits, totals);
        }
    }

    function test_revoke_revertsWithNothingPending() public {
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 0));
        _revoke(0, debits, totals);

        // Without a window the root is claimable at once and cannot be revoked.
        _settle(1, ROOT_1, debits, totals);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 1));
        _revoke(1, debits, totals);
    }

    function test_revoke_revertsAfterActivation() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt());
        escrow.activate();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 1));
        _revoke(1, debits, totals);
    }

    function test_revoke_revertsOnWrongEpoch() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(2, ROOT_2, debits, totals);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 1));
        _revoke(1, debits, totals);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 3));
        _revoke(3, debits, totals);
    }

    function test_revoke_revertsOnWrongDebits() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));

        vm.startPrank(guardian);
        // A larger debit would mint budget out of thin air.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
        escrow.revoke(1, _debits(CAMPAIGN_A, 301e6), _totals(usd, 300e6));
        // The right amount credited to another campaign.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
        escrow.revoke(1, _debits(CAMPAIGN_C, 300e6), _totals(usd, 300e6));
        // Consistent but different debits and totals.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
        escrow.revoke(1, _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6));
        vm.stopPrank();
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
    }

    /// @dev Anyone can `fund` a debited campaign while its epoch is pending. However large the
    ///      top-up, restoring the debit on `revoke` must not overflow, or the pending root
    ///      could no longer be stopped. Budgets are uint256 now; the top-up here is as large
    ///      as the token's supply allows.
    function test_revoke_survivesBudgetToppedUpToMaximum() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 1, CAMPAIGN_B, BUDGET);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 1, eur, BUDGET);
        _settle(1, ROOT_1, debits, totals);

        uint256 topUp = type(uint256).max - usd.totalSupply();
        _mintAndApprove(stranger, usd, topUp);
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, topUp);
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 1 + topUp, "topped up");

        _revoke(1, debits, totals);
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, bytes32(0), "pending root dropped");
        assertEq(_remaining(CAMPAIGN_A), BUDGET + topUp, "debit restored on top");
        assertEq(_remaining(CAMPAIGN_B), BUDGET, "victim's budget restored");
        assertEq(_settled(usd), 0, "usd settled");
        assertEq(_settled(eur), 0, "eur settled");
    }
}
