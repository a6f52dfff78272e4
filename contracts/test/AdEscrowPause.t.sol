// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {TestToken} from "./mocks/TestToken.sol";
import {AdEscrowTestBase} from "./utils/AdEscrowTestBase.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice The guardian's pause: it parks every token's root, so claims stop for all of them
///         and resume with the same roots.
contract AdEscrowPauseTest is AdEscrowTestBase {
    /// @dev Epoch 1 from `_settleFirstEpoch`: alice 100 usd + 200 eur, bob 200 usd.
    bytes32[] internal leaves1;

    function setUp() public override {
        super.setUp();
        leaves1 = _settleFirstEpoch();
    }

    function test_pause_parksEveryTokensRootAndUnpauseRestoresThem() public {
        bytes32[] memory leaves2 = _settleSecondEpoch();
        uint256 usdLocked = _locked(usd);
        uint256 eurLocked = _locked(eur);

        vm.expectEmit(address(escrow));
        emit IAdEscrow.PauseSet(true);
        vm.prank(guardian);
        escrow.pause();

        (,,,, bool paused) = escrow.settlementState();
        assertTrue(paused, "paused");
        assertEq(_root(usd), bytes16(0), "usd root parked");
        assertEq(_root(eur), bytes16(0), "eur root parked");
        assertEq(_locked(usd), usdLocked, "usd locked kept");
        assertEq(_locked(eur), eurLocked, "eur locked kept");
        // No claim can use the previous root while paused, and the view says so.
        assertEq(_previousRoot(usd), bytes16(0), "usd previous hidden");

        vm.expectEmit(address(escrow));
        emit IAdEscrow.PauseSet(false);
        vm.prank(guardian);
        escrow.unpause();

        (,,,, paused) = escrow.settlementState();
        assertFalse(paused, "unpaused");
        for (uint256 t; t < 2; ++t) {
            TestToken token = [usd, eur][t];
            assertEq(_root(token), PayoutTree.half(leaves2), "current restored");
            assertEq(_previousRoot(token), PayoutTree.half(leaves1), "previous kept");
        }
        assertEq(_locked(usd), usdLocked, "usd locked");
        assertEq(_locked(eur), eurLocked, "eur locked");
    }

    /// @dev While paused, every claim reverts `AdEscrowPaused`, whatever its token or root
    ///      and whether its token has a root at all; after unpausing they all pay.
    function test_pause_claimsRevertPausedForEveryToken() public {
        bytes32[] memory leaves2 = _settleSecondEpoch();
        TestToken gbp = new TestToken("Test GBP", "tGBP");
        IAdEscrow.Claim[4] memory claims = [
            IAdEscrow.Claim(
                alice, address(usd), _pack(alice, usd, 300e6), _proof(leaves2, alice, 300e6)
            ),
            IAdEscrow.Claim(bob, address(usd), _pack(bob, usd, 200e6), _proof(leaves1, bob, 200e6)),
            IAdEscrow.Claim(
                alice,
                address(eur),
                _pack(alice, eur, 200e6),
                PayoutTree.proof(leaves2, _leaf(alice, eur, 200e6))
            ),
            IAdEscrow.Claim(alice, address(gbp), 1, new bytes32[](0))
        ];
        vm.prank(guardian);
        escrow.pause();
        for (uint256 i; i < claims.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
            escrow.claim(
                claims[i].account, claims[i].token, claims[i].indexAndAmount, claims[i].proof
            );
        }

        vm.prank(guardian);
        escrow.unpause();
        assertEq(_claimOf(claims[0]), 300e6, "alice usd, current root");
        assertEq(_claimOf(claims[1]), 200e6, "bob usd, previous root");
        assertEq(_claimOf(claims[2]), 200e6, "alice eur");
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNoRoot.selector));
        _claimOf(claims[3]);
    }

    function _claimOf(IAdEscrow.Claim memory c) internal returns (uint256) {
        return escrow.claim(c.account, c.token, c.indexAndAmount, c.proof);
    }

    /// @dev Pausing visits every listed token: with MAX_TOKENS of them it parks and restores
    ///      all, in gas that fits well in a block.
    function test_pause_parksAndRestoresMaxTokens() public {
        uint256 max = escrow.MAX_TOKENS();
        IAdEscrow.TokenTotal[] memory totals = new IAdEscrow.TokenTotal[](max - 2);
        for (uint256 i; i < totals.length; ++i) {
            totals[i] = IAdEscrow.TokenTotal(vm.addr(0x1000 + i), 0);
        }
        bytes32 root = keccak256("many tokens");
        _settle(2, root, new IAdEscrow.Debit[](0), totals);
        address[] memory listed = escrow.tokens();
        assertEq(listed.length, max, "full");

        vm.prank(guardian);
        uint256 gasBefore = gasleft();
        escrow.pause();
        assertLt(gasBefore - gasleft(), 5_000_000, "pause fits in a block");
        for (uint256 i; i < max; ++i) {
            (bytes16 parked,,) = escrow.tokenState(listed[i]);
            assertEq(parked, bytes16(0), "parked");
        }

        vm.prank(guardian);
        gasBefore = gasleft();
        escrow.unpause();
        assertLt(gasBefore - gasleft(), 5_000_000, "unpause fits in a block");
        assertEq(_root(usd), PayoutTree.half(leaves1), "usd restored");
        assertEq(_root(eur), PayoutTree.half(leaves1), "eur restored");
        for (uint256 i = 2; i < max; ++i) {
            (bytes16 restored,,) = escrow.tokenState(listed[i]);
            assertEq(restored, _high(root), "restored");
        }
        assertEq(_claim(bob, usd, 200e6, leaves1), 200e6, "claims work again");
    }

    /// @dev Funding a campaign while paused writes the token's `locked` half; the parked root
    ///      must come back untouched.
    function test_pause_fundingWhilePausedKeepsParkedRoot() public {
        vm.prank(guardian);
        escrow.pause();
        _mintAndApprove(stranger, usd, 500e6);
        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, 500e6);
        assertEq(_root(usd), bytes16(0), "still parked");
        assertEq(_locked(usd), BUDGET - 300e6 + 500e6, "locked grew");

        vm.prank(guardian);
        escrow.unpause();
        assertEq(_root(usd), PayoutTree.half(leaves1), "root back");
        assertEq(_locked(usd), BUDGET + 200e6, "locked kept");
        assertEq(_claim(bob, usd, 200e6, leaves1), 200e6, "bob paid");
    }

    function test_unpause_claimsResumeWithSameRoot() public {
        bytes32[] memory proof = _proof(leaves1, bob, 200e6);
        uint256 claim = _pack(bob, usd, 200e6);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.claim(bob, address(usd), claim, proof);

        vm.prank(guardian);
        escrow.unpause();
        assertEq(escrow.claim(bob, address(usd), claim, proof), 200e6, "paid after unpause");
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
        // A second pause must not park the zeroed roots over the real ones.
        assertEq(_root(usd), PayoutTree.half(leaves1), "usd root survives double pause");
        assertEq(_root(eur), PayoutTree.half(leaves1), "eur root survives double pause");
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
