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
        escrow.activate(bytes32(0), new IAdEscrow.TokenTotal[](0));

        // Nor after a settlement without a window, which is current at once.
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNotClaimableYet.selector, 0));
        _activate(_debits(CAMPAIGN_A, 1), _totals(usd, 1));
    }

    function test_activate_revertsInsideWindow() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        uint40 claimableAt = _pendingClaimableAt();
        vm.warp(claimableAt - 1);
        // Right debits and totals, one second early.
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNotClaimableYet.selector, claimableAt)
        );
        _activate(_debits(CAMPAIGN_A, 1), _totals(usd, 1));
        assertEq(_root(usd), bytes16(0), "not current");
        assertEq(_locked(usd), 2 * BUDGET, "debit still locked");
    }

    function test_activate_revertsWhilePaused() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        vm.warp(_pendingClaimableAt());
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        _activate(_debits(CAMPAIGN_A, 1), _totals(usd, 1));
    }

    /// @dev `activate` is open to anyone, so the debits' hash it is given must be the one
    ///      settled: otherwise anyone could pass totals that do not belong to the epoch.
    function test_activate_revertsOnWrongDebitsHash() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6, eur, 200e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt());

        bytes32[4] memory wrong = [
            bytes32(0),
            _debitsHash(_debits(CAMPAIGN_A, 300e6)),
            _debitsHash(_debits(CAMPAIGN_B, 200e6, CAMPAIGN_A, 300e6)),
            // The commitment itself is not the debits' hash.
            _commitment(debits, totals)
        ];
        for (uint256 i; i < wrong.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
            escrow.activate(wrong[i], totals);
        }
        _activate(debits, totals);
        assertEq(_currentEpoch(), 1, "the right ones activate");
    }

    /// @dev The totals decide which tokens rotate and how much leaves `locked`: any change to
    ///      them, even a reordering, is refused.
    function test_activate_revertsOnWrongTotals() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6, eur, 200e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt());
        bytes32 debitsHash = _debitsHash(debits);

        IAdEscrow.TokenTotal[][5] memory wrong = [
            _totals(usd, 300e6 + 1, eur, 200e6),
            _totals(usd, 300e6),
            _totals(eur, 200e6, usd, 300e6),
            _append(_totals(usd, 300e6, eur, 200e6), address(0xBEEF), 0),
            new IAdEscrow.TokenTotal[](0)
        ];
        for (uint256 i; i < wrong.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
            escrow.activate(debitsHash, wrong[i]);
        }
        assertEq(_root(usd), bytes16(0), "usd not current");
        assertEq(_root(eur), bytes16(0), "eur not current");
        assertEq(_locked(usd), 2 * BUDGET, "usd debits still locked");
        assertEq(_locked(eur), BUDGET, "eur debits still locked");
    }

    /// @dev A pending epoch moves exactly the tokens its totals list, and only when
    ///      activated: the others keep their current and previous roots.
    function test_activate_rotatesOnlyTheTokensItLists() public {
        _settle(
            1,
            ROOT_1,
            _debits(CAMPAIGN_A, 100e6, CAMPAIGN_B, 100e6),
            _totals(usd, 100e6, eur, 100e6)
        );
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 50e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 50e6);
        _settle(2, ROOT_2, debits, totals);
        assertEq(_root(usd), _high(ROOT_1), "usd waits for activation");

        vm.warp(_pendingClaimableAt());
        _activate(debits, totals);
        assertEq(_root(usd), _high(ROOT_2), "usd rotated");
        assertEq(_previousRoot(usd), _high(ROOT_1), "usd previous");
        assertEq(_root(eur), _high(ROOT_1), "eur kept its root");
        assertEq(_previousRoot(eur), bytes16(0), "eur has no previous root");
        assertEq(_locked(eur), BUDGET - 100e6, "eur locked untouched");
    }

    /// @dev Activation is what releases a pending epoch's debits from `locked`, for exactly
    ///      the tokens it names.
    function test_activate_releasesTheEpochsDebitsFromLocked() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_C, 50e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 350e6, eur, 0);
        _settle(1, ROOT_1, debits, totals);
        assertEq(_locked(usd), 2 * BUDGET, "usd: budgets and pending debits");

        vm.warp(_pendingClaimableAt());
        vm.prank(stranger);
        _activate(debits, totals);

        assertEq(_locked(usd), 2 * BUDGET - 350e6, "usd: budgets only");
        assertEq(_locked(eur), BUDGET, "eur: nothing debited");
        assertEq(_root(usd), _high(ROOT_1), "usd current");
        assertEq(_root(eur), _high(ROOT_1), "eur current through its zero total");
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
        _activate(_debits(CAMPAIGN_C, 150e6), _totals(usd, 150e6));

        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(_root(usd), PayoutTree.half(leaves2), "current root");
        assertEq(_previousRoot(usd), PayoutTree.half(leaves1), "previous root kept");
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

    function test_revoke_restoresBudgetsAndKeepsThemLocked() public {
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
        // The revoked debits never left `locked`; now they are budgets again.
        assertEq(_locked(usd), 2 * BUDGET - 100e6, "usd: every budget");
        assertEq(_locked(eur), BUDGET, "eur: every budget");
        (bytes32 pending, bytes32 commitment) = escrow.pendingRoot();
        assertEq(pending, bytes32(0), "pending root");
        assertEq(commitment, bytes32(0), "commitment");
        assertEq(_pendingClaimableAt(), 0, "claimable at");
        assertEq(_root(usd), _high(ROOT_1), "current root untouched");
        assertEq(_root(eur), bytes16(0), "eur never got the revoked root");
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
        assertEq(_locked(usd), 2 * BUDGET, "usd locked");
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
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, ROOT_1, "still pending");

        _activate(debits, totals);
        assertEq(_root(usd), _high(ROOT_1), "activated");
        assertEq(_locked(usd), 2 * BUDGET - 300e6, "debits released");
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
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "restored");
        assertEq(_locked(usd), 2 * BUDGET, "usd locked");
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
        _activate(debits, totals);

        // Long after the window the guardian can still revoke.
        vm.warp(uint256(claimableAt) + 30 days);
        vm.expectEmit(address(escrow));
        emit IAdEscrow.SettlementRevoked(1, ROOT_1);
        _revoke(1, debits, totals);

        assertEq(_remaining(CAMPAIGN_A), BUDGET, "A restored");
        assertEq(_remaining(CAMPAIGN_B), BUDGET, "B restored");
        assertEq(_locked(usd), 2 * BUDGET, "usd locked");
        assertEq(_locked(eur), BUDGET, "eur locked");
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
        _activate(debits, totals);
        assertEq(_root(usd), bytes16(0), "no root");
        assertEq(escrow.tokens().length, 0, "no token listed");
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
        assertEq(_locked(usd), 2 * BUDGET, "usd locked");
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

        _activate(debits, totals);
        assertEq(_root(usd), _high(ROOT_1), "activated");
    }

    function test_revoke_revertsAfterActivationEvenWhilePaused() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, ROOT_1, debits, totals);
        vm.warp(_pendingClaimableAt());
        _activate(debits, totals);

        // Pausing does not reopen an activated root.
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToRevoke.selector, 1));
        _revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "nothing restored");
        assertEq(_locked(usd), 2 * BUDGET - 300e6, "debits stay released");
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
        _activate(debits, totals);
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
    ///      could no longer be stopped. The top-up here is as large as `locked` allows: the
    ///      pending debit is still in it, so the restored budget fits too.
    function test_revoke_survivesBudgetToppedUpToMaximum() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 1, CAMPAIGN_B, BUDGET);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 1, eur, BUDGET);
        _settle(1, ROOT_1, debits, totals);

        uint256 topUp = type(uint128).max - _locked(usd);
        _mintAndApprove(stranger, usd, topUp);
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, topUp);
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 1 + topUp, "topped up");

        _revoke(1, debits, totals);
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, bytes32(0), "pending root dropped");
        assertEq(_remaining(CAMPAIGN_A), BUDGET + topUp, "debit restored on top");
        assertEq(_remaining(CAMPAIGN_B), BUDGET, "victim's budget restored");
        assertEq(_locked(usd), type(uint128).max, "usd locked at its limit");
        assertEq(_locked(eur), BUDGET, "eur locked");
        _assertCovered(usd);
    }

    // ---------------------------------------------------------------------------------
    // The cap around a pending epoch
    // ---------------------------------------------------------------------------------

    /// @dev The guardian revokes a root that would have paid bob far more than was spent.
    ///      Claims under the current root went on meanwhile, but none could touch the pending
    ///      debits, so after the revoke the escrow still holds every budget: each advertiser
    ///      withdraws in full, and the good epoch's payees are still paid in full.
    function test_revoke_escrowStillHoldsEveryBudgetAndAdvertisersWithdrawInFull() public {
        // Epoch 1, current at once: alice 100 and bob 200 usd of A's 300.
        bytes32[] memory leaves1 = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 200e6));
        _settle(1, PayoutTree.root(leaves1), _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));
        _setWindow(WINDOW);

        // Epoch 2, pending: debits A 400 and C 100, but its tree gives bob 1,500 in all.
        bytes32[] memory bad = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 1500e6));
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 400e6, CAMPAIGN_C, 100e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 500e6);
        _settle(2, PayoutTree.root(bad), debits, totals);

        // While it is pending its leaves are not claimable, and epoch 1's are.
        bytes32[] memory badProof = PayoutTree.proof(bad, _leaf(bob, usd, 1500e6));
        uint256 badClaim = _pack(bob, usd, 1500e6);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(bob, address(usd), badClaim, badProof);
        assertEq(_claim(alice, usd, 100e6, leaves1), 100e6, "alice paid from epoch 1");

        _revoke(2, debits, totals);
        assertEq(_locked(usd), 2 * BUDGET - 300e6, "locked: every budget");
        _assertCovered(usd);

        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET - 300e6, "A: all but epoch 1");
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_C), BUDGET, "C: all of it");
        vm.prank(otherAdvertiser);
        assertEq(escrow.withdraw(CAMPAIGN_B), BUDGET, "B: all of it");
        assertEq(_locked(usd), 0, "nothing locked");

        // What is left is bob's share of epoch 1, and the revoked root cannot take it.
        assertEq(usd.balanceOf(address(escrow)), 200e6, "bob's share left");
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(bob, address(usd), badClaim, badProof);
        assertEq(_claim(bob, usd, 200e6, leaves1), 200e6, "bob paid from epoch 1");
        assertEq(usd.balanceOf(address(escrow)), 0, "escrow empty");
    }

    /// @dev A bad root is current (its window passed unchallenged): it gives alice 300 usd
    ///      where its epoch debited 100. Epoch 2 then debits A by 200 and waits out its
    ///      window; alice's claim under the bad root is refused, since the 200 stay locked.
    function _badRootThenPendingEpoch()
        internal
        returns (
            bytes32[] memory bad,
            IAdEscrow.Debit[] memory debits,
            IAdEscrow.TokenTotal[] memory totals,
            bytes32[] memory proof,
            uint256 claim
        )
    {
        bad = _leaves(_leaf(alice, usd, 300e6), _leaf(bob, usd, 0));
        _settle(1, PayoutTree.root(bad), _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6));
        _setWindow(WINDOW);
        debits = _debits(CAMPAIGN_A, 200e6);
        totals = _totals(usd, 200e6);
        _settle(2, ROOT_2, debits, totals);
        proof = PayoutTree.proof(bad, _leaf(alice, usd, 300e6));
        claim = _pack(alice, usd, 300e6);

        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(alice, address(usd), claim, proof);
    }

    /// @dev A bad root is current (its window passed unchallenged): it gives alice 300 usd
    ///      where its epoch debited 100. The next epoch's 200 stay locked while pending, so
    ///      alice cannot be paid out of them under the current root. (Were she, revoking that
    ///      epoch would restore budgets the escrow no longer held.)
    function test_claim_cannotSpendPendingDebitsUnderCurrentRoot() public {
        (
            bytes32[] memory bad,
            IAdEscrow.Debit[] memory debits,
            IAdEscrow.TokenTotal[] memory totals,
            bytes32[] memory proof,
            uint256 claim
        ) = _badRootThenPendingEpoch();
        assertEq(usd.balanceOf(alice), 0, "alice unpaid");
        assertEq(_claimed(alice, usd), 0, "nothing recorded");

        // Once activated, epoch 2's debits are claimable, here through the previous root.
        vm.warp(_pendingClaimableAt());
        _activate(debits, totals);
        assertEq(_previousRoot(usd), PayoutTree.half(bad), "bad root now previous");
        assertEq(escrow.claim(alice, address(usd), claim, proof), 300e6, "paid after activation");
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "exactly the budgets left");
    }

    /// @dev The same bad current root, but the guardian revokes the pending epoch: A's budget
    ///      is whole again and the advertiser takes it back, while alice can never get more
    ///      than the 100 that was activated.
    function test_revoke_restoresBudgetABadCurrentRootCouldNotSpend() public {
        (
            bytes32[] memory bad,
            IAdEscrow.Debit[] memory debits,
            IAdEscrow.TokenTotal[] memory totals,
            bytes32[] memory proof,
            uint256 claim
        ) = _badRootThenPendingEpoch();
        _revoke(2, debits, totals);

        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET - 100e6, "A: all but epoch 1");
        // C's budget is still there, and still out of alice's reach.
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(alice, address(usd), claim, proof);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_C), BUDGET, "C: all of it");
        assertEq(usd.balanceOf(address(escrow)), 100e6, "epoch 1's debit left");
    }
}
