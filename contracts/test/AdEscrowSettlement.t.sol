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
        // No window: the debits are claimable at once, so they leave `locked` at once.
        assertEq(_locked(usd), 2 * BUDGET - 300e6, "usd locked: A and C's budgets");
        assertEq(_locked(eur), BUDGET - 200e6, "eur locked: B's budget");
        assertEq(_root(usd), _high(ROOT_1), "usd root");
        assertEq(_root(eur), _high(ROOT_1), "eur root");
        assertEq(_previousRoot(usd), bytes16(0), "no previous usd root");
        assertEq(escrow.tokens(), _addresses(address(usd), address(eur)), "tokens listed");
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentEpoch(), 1, "current epoch");
    }

    function test_settle_sumsSeveralCampaignsOfOneToken() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6, CAMPAIGN_C, 50e6), _totals(usd, 350e6));
        assertEq(_locked(usd), 2 * BUDGET - 350e6, "usd locked");
        assertEq(_remaining(CAMPAIGN_C), BUDGET - 50e6, "C remaining");
    }

    function test_settle_releasesDebitsAcrossEpochs() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), _totals(usd, 300e6));
        _settle(2, ROOT_2, _debits(CAMPAIGN_C, 100e6), _totals(usd, 100e6));
        assertEq(_locked(usd), 2 * BUDGET - 400e6, "usd locked");
        assertEq(_root(usd), _high(ROOT_2), "current root");
        assertEq(_previousRoot(usd), _high(ROOT_1), "previous root");
    }

    function test_settle_acceptsEpochWithoutDebits() public {
        _settle(1, ROOT_1, new IAdEscrow.Debit[](0), new IAdEscrow.TokenTotal[](0));
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentEpoch(), 1, "current epoch");
        // No totals, no token moves to the root.
        assertEq(_root(usd), bytes16(0), "usd has no root");
        assertEq(escrow.tokens().length, 0, "no token listed");
    }

    // ---------------------------------------------------------------------------------
    // settle: roots per token
    // ---------------------------------------------------------------------------------

    /// @dev A token whose tree has leaves but no debits this epoch is listed with a zero
    ///      total, and that is enough to move it to the new root.
    function test_settle_zeroTotalRotatesTheTokensRoot() public {
        _settle(
            1,
            ROOT_1,
            _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6),
            _totals(usd, 300e6, eur, 200e6)
        );
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6, eur, 0));

        assertEq(_root(eur), _high(ROOT_2), "eur moved to the new root");
        assertEq(_previousRoot(eur), _high(ROOT_1), "eur keeps the old one as previous");
        assertEq(_locked(eur), BUDGET - 200e6, "nothing more released");
        assertEq(_root(usd), _high(ROOT_2), "usd moved too");
    }

    /// @dev Only the tokens in `totals` rotate: the others keep their current and previous
    ///      roots, and so their proofs.
    function test_settle_tokenNotInTotalsKeepsItsRoots() public {
        _settle(
            1,
            ROOT_1,
            _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6),
            _totals(usd, 300e6, eur, 200e6)
        );
        _settle(
            2,
            ROOT_2,
            _debits(CAMPAIGN_A, 100e6, CAMPAIGN_B, 100e6),
            _totals(usd, 100e6, eur, 100e6)
        );
        bytes32 root3 = keccak256("root 3");
        _settle(3, root3, _debits(CAMPAIGN_C, 50e6), _totals(usd, 50e6));

        assertEq(_root(usd), _high(root3), "usd rotated");
        assertEq(_previousRoot(usd), _high(ROOT_2), "usd previous");
        assertEq(_root(eur), _high(ROOT_2), "eur root untouched");
        assertEq(_previousRoot(eur), _high(ROOT_1), "eur previous untouched");
        assertEq(_locked(eur), BUDGET - 300e6, "eur locked untouched");
    }

    /// @dev Tokens are listed once, in the order they first got a root.
    function test_settle_listsEachTokenOnceInOrderOfFirstRoot() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_B, 1), _totals(eur, 1));
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1, eur, 0));
        _settle(3, keccak256("root 3"), _debits(CAMPAIGN_A, 1), _totals(eur, 0, usd, 1));
        assertEq(escrow.tokens(), _addresses(address(eur), address(usd)), "tokens");
    }

    /// @dev Any token can be given a root with a zero total, campaigns or not, up to
    ///      MAX_TOKENS of them; the next new token is refused, tokens already listed are not.
    function test_settle_revertsPastMaxTokens() public {
        uint256 max = escrow.MAX_TOKENS();
        assertEq(max, 64, "MAX_TOKENS");
        // usd and 63 tokens nobody deployed.
        IAdEscrow.TokenTotal[] memory all = _manyTotals(max);
        all[0] = IAdEscrow.TokenTotal(address(usd), 300e6);
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 300e6), all);
        assertEq(escrow.tokens().length, max, "full");

        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowTooManyTokens.selector));
        _settle(2, ROOT_2, _debits(CAMPAIGN_B, 200e6), _totals(eur, 200e6));

        // A listed token still rotates; the failed settlement used no epoch.
        _settle(2, ROOT_2, _debits(CAMPAIGN_C, 100e6), _totals(usd, 100e6));
        assertEq(_root(usd), _high(ROOT_2), "usd rotated");
        assertEq(_root(eur), bytes16(0), "eur never got a root");
    }

    /// @dev With a challenge window the limit is checked when settling: a pending root that
    ///      `activate` could not make current would, once its window was over, be neither
    ///      activatable nor revocable, and block every later epoch.
    function test_settle_revertsPastMaxTokensBeforeItIsPending() public {
        _settle(1, ROOT_1, new IAdEscrow.Debit[](0), _manyTotals(escrow.MAX_TOKENS()));
        _setWindow(WINDOW);

        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowTooManyTokens.selector));
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 100e6), _totals(usd, 100e6));
        assertEq(_lastEpoch(), 1, "no epoch used");
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "nothing debited");

        // Listed tokens still settle and activate.
        IAdEscrow.TokenTotal[] memory listed = new IAdEscrow.TokenTotal[](2);
        listed[0] = IAdEscrow.TokenTotal(address(_junkToken(0)), 0);
        listed[1] = IAdEscrow.TokenTotal(address(_junkToken(1)), 0);
        _settle(2, ROOT_2, new IAdEscrow.Debit[](0), listed);
        vm.warp(_pendingClaimableAt());
        _activate(new IAdEscrow.Debit[](0), listed);
        assertEq(_currentEpoch(), 2, "activated");
    }

    function test_settle_revertsOnATokenNamedTwice() public {
        // A second, zero total of the same token would pass the sums, then rotate the token
        // twice and leave its new root as its previous one.
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 100e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 100e6, usd, 0);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowTotalsMismatch.selector, usd));
        vm.prank(settler);
        escrow.settle(1, ROOT_1, debits, totals);
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

    /// @dev Claims compare only the high 128 bits, and a zero high half means "no root": a
    ///      root whose high half is zero is empty however its low half reads.
    function test_settle_revertsOnRootWithZeroHighHalf() public {
        bytes32[3] memory empties =
            [bytes32(uint256(1)), bytes32(uint256(type(uint128).max)), bytes32(uint256(1) << 127)];
        for (uint256 i; i < empties.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowEmptyRoot.selector));
            _settle(1, empties[i], _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        }
        // The lowest bit of the high half is enough.
        bytes32 smallest = bytes32(uint256(1) << 128);
        _settle(1, smallest, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        assertEq(_root(usd), _high(smallest), "accepted");
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
        assertEq(_locked(usd), 2 * BUDGET - 300e6, "usd locked");
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
        assertEq(_locked(usd), 2 * BUDGET - 150e6, "usd locked");
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
        _settle(1, ROOT_1, new IAdEscrow.Debit[](0), _totals(usd, 0));
        assertEq(_root(usd), _high(ROOT_1), "current root");
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
        assertEq(
            commitment,
            keccak256(abi.encode(keccak256(abi.encode(debits)), totals)),
            "commitment: the debits' hash and the totals"
        );
        assertEq(_root(usd), bytes16(0), "nothing claimable yet");
        assertEq(escrow.tokens().length, 0, "no token listed yet");
        assertEq(_pendingClaimableAt(), claimableAt, "claimable at");
        assertEq(_lastEpoch(), 1, "last epoch");
        assertEq(_currentEpoch(), 0, "current epoch");
        assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "debited already");
        // Pending debits stay locked until their root is activated.
        assertEq(_locked(usd), 2 * BUDGET, "pending debits still locked");
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

        _activate(_debits(CAMPAIGN_A, 1), _totals(usd, 1));
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(_root(usd), _high(ROOT_1), "epoch 1 promoted");
        assertEq(_previousRoot(usd), bytes16(0), "previous root");
        assertEq(pending, ROOT_2, "epoch 2 pending");
        assertEq(_currentEpoch(), 1, "current epoch");
        assertEq(_lastEpoch(), 2, "last epoch");
    }

    function test_settle_windowChangeAppliesToLaterSettlements() public {
        _settle(1, ROOT_1, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        _setWindow(WINDOW);
        assertEq(_root(usd), _high(ROOT_1), "earlier root stays claimable");
        _settle(2, ROOT_2, _debits(CAMPAIGN_A, 1), _totals(usd, 1));
        assertEq(_root(usd), _high(ROOT_1), "new root waits");
        assertEq(_pendingClaimableAt(), block.timestamp + WINDOW, "claimable at");
    }

    // ---------------------------------------------------------------------------------
    // helpers
    // ---------------------------------------------------------------------------------

    /// @dev An address standing for a token nobody deployed: a zero total needs no campaign.
    function _junkToken(uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("junk token", i)))));
    }

    /// @dev Zero totals of `count` junk tokens.
    function _manyTotals(uint256 count)
        internal
        pure
        returns (IAdEscrow.TokenTotal[] memory totals)
    {
        totals = new IAdEscrow.TokenTotal[](count);
        for (uint256 i; i < count; ++i) {
            totals[i] = IAdEscrow.TokenTotal(_junkToken(i), 0);
        }
    }

    function _addresses(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }
}
