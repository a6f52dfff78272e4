// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {SettlementFixture} from "./utils/SettlementFixture.sol";

/// @notice The settler's side: settle.
contract AdEscrowSettlementTest is SettlementFixture {
    // ---------------------------------------------------------------------------------
    // settle
    // ---------------------------------------------------------------------------------

    function test_settle_debitsCampaignsAndPublishesRoot() public {
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6, eur, 200e6);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.Settled(1, ROOT_1, uint40(block.timestamp), debits, totals);
        _settle(1, ROOT_1, debits, totals);

        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "A remaining");
        assertEq(_remaining(CAMPAIGN_B), BUDGET - 200e6, "B remaining");
        assertEq(_remaining(CAMPAIGN_C), BUDGET, "C untouched");
        assertEq(_settled(usd), 300e6, "usd settled");
        assertEq(_settled(eur), 200e6, "eur settled");
        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        assertEq(current, ROOT_1, "current root");
        assertEq(previous, bytes32(0), "previous root");
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentEpoch(), 1, "current epoch");
    }

    function test_settle_sumsSeveralCampaignsOfOneToken() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6, CAMPAIGN_C, 50e6), _totals(usd, 350e6));
        assertEq(_settled(usd), 350e6, "usd settled");
        assertEq(_remaining(CAMPAIGN_C), BUDGET - 50e6, "C remaining");
    }

    function test_settle_accumulatesSettledTotalsAcrossEpochs() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));
        _settle(2, ROOT_2, _debits(CAMPAIGN_C, 100e6), _totals(usd, 100e6));
        assertEq(_settled(usd), 400e6, "usd settled");
        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        assertEq(current, ROOT_2, "current root");
        assertEq(previous, ROOT_1, "previous root");
    }

    function test_settle_acceptsEpochWithoutDebits() public {
        _settle(1, ROOT_1, new IAdEscrow.Debit[](0), new IAdEscrow.TokenTotal[](0));
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentRoot(), ROOT_1, "current root");
    }

    function test_settle_revertsForNonSettler() public {
        bytes32 role = escrow.SETTLER_ROLE();
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 1);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 1);
        for (uint256 i; i < 3; ++i) {
            address caller = [admin, guardian, stranger][i];
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role
                )
            );
            vm.prank(caller);
            escrow.settle(1, ROOT_1, debits, totals);
        }
    }

    function test_settle_revertsOnWrongEpoch() public {
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 1);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 1);
        vm.startPrank(settler);
        // Skipping ahead.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowWrongEpoch.selector, 1, 2));
        escrow.settle(2, ROOT_1, debits, totals);
        // Epoch zero is never valid.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowWrongEpoch.selector, 1, 0));
        escrow.settle(0, ROOT_1, debits, totals);

        escrow.settle(1, ROOT_1, debits, totals);
        escrow.settle(2, ROOT_2, debits, totals);
        // Duplicate of the last epoch.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowWrongEpoch.selector, 3, 2));
        escrow.settle(2, ROOT_2, debits, totals);
        // Stale epoch.
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowWrongEpoch.selector, 3, 1));
        escrow.settle(1, ROOT_1, debits, totals);
        vm.stopPrank();
    }

    function test_settle_revertsOnEmptyRoot() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowEmptyRoot.selector));
        _settle(1, bytes32(0), _debits(CAMPAIGN_A, 1), _totals(usd, 1));
    }

    function test_settle_revertsOnUnknownCampaign() public {
        bytes32 unknown = keccak256("unknown");
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowUnknownCampaign.selector, unknown));
        _settle(1, ROOT_1, _debits(unknown, 1), _totals(usd, 1));
    }

    function test_settle_revertsOnZeroDebit() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowZeroAmount.selector));
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1, CAMPAIGN_C, 0), _totals(usd, 1));
    }

    function test_settle_revertsOnDebitBeyondRemaining() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowInsufficientBudget.selector, CAMPAIGN_A, BUDGET, BUDGET + 1
            )
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, BUDGET + 1), _totals(usd, BUDGET + 1));
    }

    function test_settle_revertsOnRepeatedDebitBeyondRemaining() public {
        // Two debits of one campaign in one epoch count against the same budget.
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowInsufficientBudget.selector, CAMPAIGN_A, 400e6, 401e6
            )
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 600e6, CAMPAIGN_A, 401e6), _totals(usd, 1001e6));
    }

    function test_settle_revertsWhenTotalDiffersFromDebits() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowTotalsMismatch.selector, address(usd))
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6 - 1));

        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowTotalsMismatch.selector, address(usd))
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6 + 1));
    }

    function test_settle_revertsWhenTokenMissingFromTotals() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowTotalsMismatch.selector, address(eur))
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6), _totals(usd, 300e6));
    }

    function test_settle_revertsOnTotalWithoutDebits() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowTotalsMismatch.selector, address(eur))
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6, eur, 1));
    }

    function test_settle_revertsWhilePaused() public {
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
    }

    function test_settle_debitsInLastSecondOfGrace() public {
        uint256 closedAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;
        vm.warp(closedAt - 1);
        // The last second of the grace period still belongs to settlement.
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "debited at end + grace - 1");
        assertEq(_settled(usd), 300e6, "usd settled");
    }

    function test_settle_revertsAtEndPlusGrace() public {
        uint256 closedAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;
        // At end + grace the advertiser may withdraw, so settlement is already closed.
        vm.warp(closedAt);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_A, closedAt
            )
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        // Long after, still closed.
        vm.warp(closedAt + 365 days);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_A, closedAt
            )
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "budget untouched");
        assertEq(_lastEpoch(), 0, "no epoch used");
    }

    function test_settle_revertsAtEarlyClosePlusGrace() public {
        vm.warp(block.timestamp + 1 days);
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_C);
        uint256 closedAt = block.timestamp + GRACE;
        assertLt(closedAt, uint256(escrow.campaign(CAMPAIGN_A).end), "before the original end");

        // Until a second before close + grace the closed campaign can still be debited.
        vm.warp(closedAt - 1);
        _settle(1, ROOT_1, _debits(CAMPAIGN_C, 100e6), _totals(usd, 100e6));

        // From close + grace on it cannot, and it takes the whole settlement down with it.
        vm.warp(closedAt);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_C, closedAt
            )
        );
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 50e6, CAMPAIGN_C, 50e6), _totals(usd, 100e6));
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "A untouched");
        assertEq(_remaining(CAMPAIGN_C), BUDGET - 100e6, "C keeps what was left");

        // Campaigns still running settle as usual.
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 50e6), _totals(usd, 50e6));
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 50e6, "A debited");
        assertEq(_settled(usd), 150e6, "usd settled");
    }

    function test_settle_closedCheckPrecedesBudgetCheck() public {
        uint256 closedAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;
        vm.warp(closedAt);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_A, closedAt
            )
        );
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, BUDGET + 1), _totals(usd, BUDGET + 1));
    }

    function test_settle_acceptsEpochWithoutDebitsAfterEveryCampaignClosed() public {
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        _settle(1, ROOT_1, new IAdEscrow.Debit[](0), new IAdEscrow.TokenTotal[](0));
        assertEq(_currentRoot(), ROOT_1, "current root");
    }

    function test_settle_holdsRootPendingDuringWindow() public {
        _setWindow(WINDOW);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        uint40 claimableAt = uint40(block.timestamp) + WINDOW;

        vm.expectEmit(address(escrow));
        emit IAdEscrow.Settled(1, ROOT_1, claimableAt, debits, totals);
        _settle(1, ROOT_1, debits, totals);

        (bytes32 pending, bytes32 commitment) = escrow.pendingRoot();
        assertEq(pending, ROOT_1, "pending root");
        assertEq(commitment, keccak256(abi.encode(debits, totals)), "commitment");
        assertEq(_currentRoot(), bytes32(0), "nothing claimable yet");
        assertEq(_pendingClaimableAt(), claimableAt, "claimable at");
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentEpoch(), 0, "current epoch");
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "debited already");
        assertEq(_settled(usd), 300e6, "settled already");
    }

    function test_settle_revertsWhilePreviousRootPending() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        uint40 claimableAt = _pendingClaimableAt();

        vm.warp(claimableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowSettlementPending.selector, 1, claimableAt)
        );
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
    }

    function test_settle_revertsUntilElapsedPendingRootIsActivated() public {
        _setWindow(WINDOW);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        uint40 claimableAt = _pendingClaimableAt();
        vm.warp(claimableAt);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowSettlementPending.selector, 1, claimableAt)
        );
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        escrow.activate();
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(current, ROOT_1, "epoch 1 promoted");
        assertEq(previous, bytes32(0), "previous root");
        assertEq(pending, ROOT_2, "epoch 2 pending");
        assertEq(_currentEpoch(), 1, "current epoch");
        assertEq(_lastEpoch(), 2, "last epoch");
    }

    function test_settle_windowChangeAppliesToLaterSettlements() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        _setWindow(WINDOW);
        assertEq(_currentRoot(), ROOT_1, "earlier root stays claimable");
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        assertEq(_currentRoot(), ROOT_1, "new root waits");
        assertEq(_pendingClaimableAt(), block.timestamp + WINDOW, "claimable at");
    }
}
