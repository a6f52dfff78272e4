// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {AdEscrow} from "../src/AdEscrow.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {AdEscrowTestBase} from "./utils/AdEscrowTestBase.sol";
import {FeeOnTransferToken} from "./mocks/FeeOnTransferToken.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice Deployment, administration and the advertiser's side: open, fund, close, withdraw.
contract AdEscrowCampaignTest is AdEscrowTestBase {
    bytes32 internal constant PERMIT_TYPEHASH = keccak256(
        "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
    );

    // ---------------------------------------------------------------------------------
    // constructor, roles, setChallengeWindow
    // ---------------------------------------------------------------------------------

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowZeroAddress.selector));
        new AdEscrow(address(0), GRACE, 0);
    }

    function test_constructor_setsAdminGraceAndWindow() public {
        AdEscrow fresh = new AdEscrow(admin, 3 days, 1 hours);
        (uint64 last, uint64 current, uint40 pendingAt, uint40 window, bool paused) =
            fresh.settlementState();
        assertTrue(fresh.hasRole(fresh.DEFAULT_ADMIN_ROLE(), admin), "admin role");
        assertEq(fresh.gracePeriod(), 3 days, "grace period");
        assertEq(window, 1 hours, "challenge window");
        assertEq(last, 0, "last epoch");
        assertEq(current, 0, "current epoch");
        assertEq(pendingAt, 0, "pending claimable at");
        assertFalse(paused, "paused");
    }

    function test_setChallengeWindow_setsWindowAndEmits() public {
        vm.expectEmit(address(escrow));
        emit IAdEscrow.ChallengeWindowSet(2 days);
        _setWindow(2 days);
        (,,, uint40 window,) = escrow.settlementState();
        assertEq(window, 2 days, "challenge window");
    }

    function test_setChallengeWindow_revertsForNonAdmin() public {
        bytes32 role = escrow.DEFAULT_ADMIN_ROLE();
        for (uint256 i; i < 3; ++i) {
            address caller = [settler, guardian, stranger][i];
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role
                )
            );
            vm.prank(caller);
            escrow.setChallengeWindow(1 days);
        }
    }

    // ---------------------------------------------------------------------------------
    // openCampaign
    // ---------------------------------------------------------------------------------

    function test_openCampaign_storesCampaignAndPullsBudget() public {
        uint40 end = _end();
        _mintAndApprove(advertiser, usd, BUDGET);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.CampaignOpened(CAMPAIGN_A, advertiser, address(usd), end);
        vm.expectEmit(address(escrow));
        emit IAdEscrow.CampaignFunded(CAMPAIGN_A, advertiser, BUDGET, BUDGET);
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), BUDGET, end);

        IAdEscrow.Campaign memory c = escrow.campaign(CAMPAIGN_A);
        assertEq(c.advertiser, advertiser, "advertiser");
        assertEq(c.end, end, "end");
        assertEq(c.token, address(usd), "token");
        assertEq(c.remaining, BUDGET, "remaining");
        assertEq(usd.balanceOf(address(escrow)), BUDGET, "escrow balance");
        assertEq(usd.balanceOf(advertiser), 0, "advertiser balance");
        assertEq(_locked(usd), BUDGET, "the budget is locked");
        assertEq(_root(usd), bytes16(0), "funding gives no root");
    }

    function test_openCampaign_holdsSeveralTokensAtOnce() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _open(advertiser, CAMPAIGN_B, eur, 2 * BUDGET);
        _open(otherAdvertiser, CAMPAIGN_C, usd, 3 * BUDGET);
        assertEq(usd.balanceOf(address(escrow)), 4 * BUDGET, "usd held");
        assertEq(eur.balanceOf(address(escrow)), 2 * BUDGET, "eur held");
        assertEq(escrow.campaign(CAMPAIGN_B).token, address(eur), "B token");
        assertEq(escrow.campaign(CAMPAIGN_C).advertiser, otherAdvertiser, "C advertiser");
        assertEq(_locked(usd), 4 * BUDGET, "usd locked");
        assertEq(_locked(eur), 2 * BUDGET, "eur locked");
    }

    function test_openCampaign_revertsOnZeroToken() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowZeroAddress.selector));
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(0), BUDGET, _end());
    }

    function test_openCampaign_revertsOnZeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowZeroAmount.selector));
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), 0, _end());
    }

    function test_openCampaign_revertsOnEndNotInFuture() public {
        _mintAndApprove(advertiser, usd, BUDGET);
        uint40 now_ = uint40(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidEnd.selector, now_));
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), BUDGET, now_);

        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidEnd.selector, now_ - 1));
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), BUDGET, now_ - 1);
    }

    function test_openCampaign_revertsOnReusedId() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _mintAndApprove(otherAdvertiser, eur, BUDGET);
        uint40 end = _end();
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowCampaignExists.selector, CAMPAIGN_A)
        );
        vm.prank(otherAdvertiser);
        escrow.openCampaign(CAMPAIGN_A, address(eur), BUDGET, end);
    }

    function test_openCampaign_revertsOnFeeOnTransferToken() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        fee.mint(advertiser, BUDGET);
        vm.prank(advertiser);
        fee.approve(address(escrow), BUDGET);
        uint40 end = _end();

        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowFeeOnTransfer.selector, address(fee), BUDGET, BUDGET * 99 / 100
            )
        );
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(fee), BUDGET, end);
    }

    function test_openCampaign_acceptsBudgetUpToUint128() public {
        // What a token's campaigns hold in all is packed in 128 bits: that is the limit.
        _open(advertiser, CAMPAIGN_A, usd, type(uint128).max);
        assertEq(_remaining(CAMPAIGN_A), type(uint128).max, "remaining");
        assertEq(_locked(usd), type(uint128).max, "locked");
        assertEq(usd.balanceOf(address(escrow)), type(uint128).max, "escrow balance");
    }

    function test_openCampaign_revertsWhenTokensBudgetsPassUint128() public {
        uint256 max = type(uint128).max;
        _mintAndApprove(advertiser, usd, max + 1);
        uint40 end = _end();
        vm.expectRevert(
            abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, max + 1)
        );
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), max + 1, end);

        // The limit is per token, over all its campaigns.
        _open(advertiser, CAMPAIGN_A, usd, max - 1);
        _mintAndApprove(otherAdvertiser, usd, 2);
        vm.expectRevert(
            abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, max + 1)
        );
        vm.prank(otherAdvertiser);
        escrow.openCampaign(CAMPAIGN_B, address(usd), 2, end);
        _open(otherAdvertiser, CAMPAIGN_C, eur, max);
        assertEq(_locked(eur), max, "another token has its own limit");
    }

    function test_openCampaign_revertsWithoutAllowance() public {
        usd.mint(advertiser, BUDGET);
        uint40 end = _end();
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, BUDGET
            )
        );
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), BUDGET, end);
    }

    // ---------------------------------------------------------------------------------
    // openCampaignWithPermit
    // ---------------------------------------------------------------------------------

    function _permit(uint256 key, address owner, uint256 value, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(
            abi.encode(PERMIT_TYPEHASH, owner, address(escrow), value, usd.nonces(owner), deadline)
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", usd.DOMAIN_SEPARATOR(), structHash));
        (v, r, s) = vm.sign(key, digest);
    }

    function test_openCampaignWithPermit_opensWithSignedApproval() public {
        (address owner, uint256 key) = makeAddrAndKey("permitOwner");
        usd.mint(owner, BUDGET);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(key, owner, BUDGET, deadline);
        uint40 end = _end();

        vm.prank(owner);
        escrow.openCampaignWithPermit(CAMPAIGN_A, address(usd), BUDGET, end, deadline, v, r, s);

        assertEq(escrow.campaign(CAMPAIGN_A).advertiser, owner, "advertiser");
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "remaining");
        assertEq(usd.nonces(owner), 1, "permit nonce used");
        assertEq(usd.allowance(owner, address(escrow)), 0, "allowance spent");
    }

    function test_openCampaignWithPermit_worksWhenPermitWasFrontRun() public {
        (address owner, uint256 key) = makeAddrAndKey("permitOwner");
        usd.mint(owner, BUDGET);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(key, owner, BUDGET, deadline);
        uint40 end = _end();

        // Someone copies the permit from the mempool and submits it first.
        vm.prank(stranger);
        usd.permit(owner, address(escrow), BUDGET, deadline, v, r, s);

        vm.prank(owner);
        escrow.openCampaignWithPermit(CAMPAIGN_A, address(usd), BUDGET, end, deadline, v, r, s);
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "remaining");
        assertEq(usd.balanceOf(address(escrow)), BUDGET, "escrow balance");
    }

    function test_openCampaignWithPermit_revertsWithBadPermitAndNoAllowance() public {
        (address owner,) = makeAddrAndKey("permitOwner");
        (, uint256 otherKey) = makeAddrAndKey("notTheOwner");
        usd.mint(owner, BUDGET);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(otherKey, owner, BUDGET, deadline);
        uint40 end = _end();

        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, BUDGET
            )
        );
        vm.prank(owner);
        escrow.openCampaignWithPermit(CAMPAIGN_A, address(usd), BUDGET, end, deadline, v, r, s);
    }

    // ---------------------------------------------------------------------------------
    // fund
    // ---------------------------------------------------------------------------------

    function test_fund_addsToBudgetFromAnyFunder() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _mintAndApprove(stranger, usd, 500e6);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.CampaignFunded(CAMPAIGN_A, stranger, 500e6, BUDGET + 500e6);
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, 500e6);

        assertEq(_remaining(CAMPAIGN_A), BUDGET + 500e6, "remaining");
        assertEq(escrow.campaign(CAMPAIGN_A).advertiser, advertiser, "advertiser unchanged");
        assertEq(usd.balanceOf(address(escrow)), BUDGET + 500e6, "escrow balance");
        assertEq(_locked(usd), BUDGET + 500e6, "locked grows with the budget");
    }

    function test_fund_revertsOnUnknownCampaign() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowUnknownCampaign.selector, CAMPAIGN_A)
        );
        escrow.fund(CAMPAIGN_A, 1);
    }

    function test_fund_revertsOnEndedCampaign() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _mintAndApprove(advertiser, usd, 1);
        vm.warp(escrow.campaign(CAMPAIGN_A).end);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowCampaignEnded.selector, CAMPAIGN_A)
        );
        vm.prank(advertiser);
        escrow.fund(CAMPAIGN_A, 1);
    }

    function test_fund_revertsOnZeroAmount() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowZeroAmount.selector));
        escrow.fund(CAMPAIGN_A, 0);
    }

    function test_fund_growsBudgetPastUint96() public {
        // The old uint96 budget cap is gone: a budget at 2^96 - 1 takes more.
        _open(advertiser, CAMPAIGN_A, usd, type(uint96).max);
        _mintAndApprove(advertiser, usd, BUDGET);
        vm.prank(advertiser);
        escrow.fund(CAMPAIGN_A, BUDGET);
        assertEq(_remaining(CAMPAIGN_A), uint256(type(uint96).max) + BUDGET, "remaining");
        assertEq(usd.balanceOf(address(escrow)), _remaining(CAMPAIGN_A), "escrow balance");
    }

    function test_fund_topsUpToMaximum() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        uint256 topUp = type(uint128).max - BUDGET;
        _mintAndApprove(stranger, usd, topUp + 1);
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, topUp);
        assertEq(_remaining(CAMPAIGN_A), type(uint128).max, "remaining");
        assertEq(_locked(usd), type(uint128).max, "locked");

        // One more unit would not fit in `locked`.
        vm.expectRevert(
            abi.encodeWithSelector(
                SafeCast.SafeCastOverflowedUintDowncast.selector,
                128,
                uint256(type(uint128).max) + 1
            )
        );
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, 1);
    }

    // ---------------------------------------------------------------------------------
    // closeCampaign
    // ---------------------------------------------------------------------------------

    function test_closeCampaign_movesEndToNow() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.warp(block.timestamp + 1 days);
        uint40 now_ = uint40(block.timestamp);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.CampaignClosed(CAMPAIGN_A, now_);
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_A);

        assertEq(escrow.campaign(CAMPAIGN_A).end, now_, "end");
        assertEq(_remaining(CAMPAIGN_A), BUDGET, "budget untouched");
    }

    function test_closeCampaign_revertsForNonAdvertiser() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNotAdvertiser.selector, CAMPAIGN_A, stranger)
        );
        vm.prank(stranger);
        escrow.closeCampaign(CAMPAIGN_A);
    }

    function test_closeCampaign_revertsOnUnknownCampaign() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowUnknownCampaign.selector, CAMPAIGN_A)
        );
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_A);
    }

    function test_closeCampaign_revertsWhenAlreadyEnded() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_A);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowCampaignEnded.selector, CAMPAIGN_A)
        );
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_A);
    }

    // ---------------------------------------------------------------------------------
    // withdraw
    // ---------------------------------------------------------------------------------

    function test_withdraw_revertsBeforeEndPlusGrace() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        uint256 availableAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;

        vm.warp(availableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowWithdrawTooEarly.selector, CAMPAIGN_A, availableAt
            )
        );
        vm.prank(advertiser);
        escrow.withdraw(CAMPAIGN_A);

        // The exact boundary is already allowed.
        vm.warp(availableAt);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET, "withdrawn at end + grace");
    }

    function test_withdraw_paysUnspentBudgetToAdvertiser() public {
        _settleFirstEpoch();
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.CampaignWithdrawn(CAMPAIGN_A, advertiser, BUDGET - 300e6);
        vm.prank(advertiser);
        uint256 amount = escrow.withdraw(CAMPAIGN_A);

        assertEq(amount, BUDGET - 300e6, "amount");
        assertEq(usd.balanceOf(advertiser), BUDGET - 300e6, "advertiser balance");
        assertEq(_remaining(CAMPAIGN_A), 0, "remaining");
        assertEq(usd.balanceOf(address(escrow)), 300e6, "settled stays for claims");
        assertEq(_locked(usd), 0, "nothing locked: the rest is claimable");
    }

    function test_withdraw_revertsForNonAdvertiser() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNotAdvertiser.selector, CAMPAIGN_A, stranger)
        );
        vm.prank(stranger);
        escrow.withdraw(CAMPAIGN_A);
    }

    function test_withdraw_revertsOnUnknownCampaign() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowUnknownCampaign.selector, CAMPAIGN_A)
        );
        escrow.withdraw(CAMPAIGN_A);
    }

    function test_withdraw_revertsWhenNothingLeft() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _settle(1, keccak256("root"), _debits(CAMPAIGN_A, BUDGET), _totals(usd, BUDGET));
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToWithdraw.selector, CAMPAIGN_A)
        );
        vm.prank(advertiser);
        escrow.withdraw(CAMPAIGN_A);
    }

    function test_withdraw_revertsOnSecondWithdrawal() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.startPrank(advertiser);
        escrow.withdraw(CAMPAIGN_A);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToWithdraw.selector, CAMPAIGN_A)
        );
        escrow.withdraw(CAMPAIGN_A);
        vm.stopPrank();
    }

    function test_withdraw_worksWhilePaused() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.prank(guardian);
        escrow.pause();
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET, "withdrawn while paused");
        assertEq(_locked(usd), 0, "unlocked while paused");
    }

    /// @dev Withdrawing while paused must leave the parked root alone: unpausing gives the
    ///      token its root back, and claims work against it.
    function test_withdraw_whilePausedKeepsParkedRoot() public {
        bytes32[] memory leaves = _settleFirstEpoch();
        vm.prank(guardian);
        escrow.pause();
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET - 300e6, "withdrawn while paused");
        assertEq(_root(usd), bytes16(0), "root parked");

        vm.prank(guardian);
        escrow.unpause();
        assertEq(_root(usd), PayoutTree.half(leaves), "root back");
        assertEq(_locked(usd), 0, "locked kept through unpause");
        assertEq(_claim(bob, usd, 200e6, leaves), 200e6, "bob paid");
        assertEq(_claim(alice, usd, 100e6, leaves), 100e6, "alice paid");
        assertEq(usd.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_withdraw_worksAfterEarlyCloseAndGrace() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        vm.warp(block.timestamp + 1 days);
        vm.prank(advertiser);
        escrow.closeCampaign(CAMPAIGN_A);
        uint256 availableAt = block.timestamp + GRACE;
        assertLt(availableAt, uint256(_end()), "earlier than the original end");

        vm.warp(availableAt);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET, "withdrawn after close + grace");
    }

    function test_withdraw_budgetAtEndPlusGraceIsBeyondSettlement() public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        uint256 closedAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;
        vm.warp(closedAt);

        // From the second withdrawal opens the budget is the advertiser's alone: the settler
        // cannot touch it, so a late settlement never races the withdrawal.
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_A, closedAt
            )
        );
        _settle(1, keccak256("root"), _debits(CAMPAIGN_A, 1), _totals(usd, 1));

        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), BUDGET, "whole budget withdrawn");
    }

    function test_withdraw_paysAgainAfterRevokeRestoresBudget() public {
        _setWindow(1 days);
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        uint256 availableAt = uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE;
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 400e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 400e6);

        // Settled a second before the grace period ends, so still pending at withdrawal.
        vm.warp(availableAt - 1);
        _settle(1, keccak256("root"), debits, totals);
        vm.warp(availableAt);
        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), 600e6, "first withdrawal");

        vm.prank(guardian);
        escrow.revoke(1, debits, totals);
        assertEq(_remaining(CAMPAIGN_A), 400e6, "budget restored");

        vm.prank(advertiser);
        assertEq(escrow.withdraw(CAMPAIGN_A), 400e6, "second withdrawal");
        assertEq(usd.balanceOf(advertiser), BUDGET, "advertiser made whole");
        assertEq(usd.balanceOf(address(escrow)), 0, "escrow empty");
        assertEq(_locked(usd), 0, "nothing locked");
    }

    // ---------------------------------------------------------------------------------
    // views
    // ---------------------------------------------------------------------------------

    function test_campaign_isZeroForUnknownId() public view {
        IAdEscrow.Campaign memory c = escrow.campaign(CAMPAIGN_C);
        assertEq(c.advertiser, address(0), "advertiser");
        assertEq(c.end, 0, "end");
        assertEq(c.token, address(0), "token");
        assertEq(c.remaining, 0, "remaining");
    }

    function test_views_startEmpty() public view {
        (bytes16 root, bytes16 previousRoot, uint256 locked) = escrow.tokenState(address(usd));
        (bytes32 pending, bytes32 commitment) = escrow.pendingRoot();
        assertEq(root, bytes16(0), "root");
        assertEq(previousRoot, bytes16(0), "previous root");
        assertEq(locked, 0, "locked");
        assertEq(escrow.tokens().length, 0, "tokens");
        assertEq(pending, bytes32(0), "pending root");
        assertEq(commitment, bytes32(0), "commitment");
        assertEq(escrow.claimed(0), 0, "claimed at index 0");
        assertEq(escrow.claimed(type(uint128).max), 0, "claimed at the last index");
        assertEq(escrow.gracePeriod(), GRACE, "grace period");
        assertEq(escrow.MAX_TOKENS(), 64, "MAX_TOKENS");
    }

    function test_tokenState_tracksEachTokenSeparately() public {
        bytes32[] memory leaves = _settleFirstEpoch();
        _claim(alice, usd, 100e6, leaves);
        (bytes16 usdRoot,, uint256 usdLocked) = escrow.tokenState(address(usd));
        (bytes16 eurRoot,, uint256 eurLocked) = escrow.tokenState(address(eur));
        assertEq(usdLocked, BUDGET - 300e6, "usd locked");
        assertEq(eurLocked, BUDGET - 200e6, "eur locked");
        // The same tree pays both tokens; each keeps the high half of its root.
        assertEq(usdRoot, PayoutTree.half(leaves), "usd root");
        assertEq(eurRoot, PayoutTree.half(leaves), "eur root");
        assertEq(escrow.claimed(ALICE_USD), 100e6, "alice usd");
        assertEq(escrow.claimed(ALICE_EUR), 0, "alice eur");
        assertEq(escrow.claimed(BOB_USD), 0, "bob usd");
        assertEq(usd.balanceOf(address(escrow)), BUDGET - 100e6, "usd held");
    }

    /// @dev A token the escrow never saw: zero everywhere, and claims have no root for it.
    function test_tokenState_isZeroForUnknownToken() public {
        _settleFirstEpoch();
        (bytes16 root, bytes16 previousRoot, uint256 locked) = escrow.tokenState(stranger);
        assertEq(root, bytes16(0), "root");
        assertEq(previousRoot, bytes16(0), "previous root");
        assertEq(locked, 0, "locked");
    }
}
