// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {AdEscrow} from "../../src/AdEscrow.sol";
import {TestToken} from "../mocks/TestToken.sol";
import {AdEscrowHandler} from "./AdEscrowHandler.sol";

/// @notice Whatever advertisers, the settler, the guardian and payees do, the escrow holds
///         exactly the unspent budgets plus the settled-but-unclaimed amounts, and nobody is
///         paid beyond the leaf the current root gives them.
contract AdEscrowInvariantTest is Test {
    AdEscrow internal escrow;
    AdEscrowHandler internal handler;
    TestToken[2] internal tokens;

    function setUp() public {
        vm.warp(1_700_000_000);
        address admin = makeAddr("admin");
        address settler = makeAddr("settler");
        address guardian = makeAddr("guardian");
        escrow = new AdEscrow(admin, 7 days, 1 hours);
        tokens = [new TestToken("Test USD", "tUSD"), new TestToken("Test EUR", "tEUR")];
        vm.startPrank(admin);
        escrow.grantRole(escrow.SETTLER_ROLE(), settler);
        escrow.grantRole(escrow.GUARDIAN_ROLE(), guardian);
        vm.stopPrank();

        handler = new AdEscrowHandler(escrow, admin, settler, guardian, tokens);
        targetContract(address(handler));
    }

    function _remainingOf(TestToken token) internal view returns (uint256 sum) {
        for (uint256 i; i < handler.campaignCount(); ++i) {
            bytes32 id = handler.campaignIds(i);
            if (escrow.campaign(id).token == address(token)) sum += escrow.campaign(id).remaining;
        }
    }

    function invariant_balanceCoversBudgetsAndUnclaimed() public view {
        for (uint256 t; t < 2; ++t) {
            (uint256 settled, uint256 claimedTotal) = escrow.tokenTotals(address(tokens[t]));
            assertEq(
                tokens[t].balanceOf(address(escrow)),
                _remainingOf(tokens[t]) + settled - claimedTotal,
                "balance == remaining budgets + settled - claimed"
            );
        }
    }

    function invariant_claimedNeverExceedsSettled() public view {
        for (uint256 t; t < 2; ++t) {
            (uint256 settled, uint256 claimedTotal) = escrow.tokenTotals(address(tokens[t]));
            assertLe(claimedTotal, settled, "claimed <= settled");
        }
    }

    function invariant_noAccountPaidBeyondItsLeaf() public view {
        for (uint256 t; t < 2; ++t) {
            for (uint256 p; p < 4; ++p) {
                address payee = handler.payee(p);
                uint256 claimed = escrow.claimed(payee, address(tokens[t]));
                assertEq(tokens[t].balanceOf(payee), claimed, "received == claimed");
                assertLe(claimed, handler.ghostClaimable(t, p), "claimed <= current leaf");
            }
        }
    }

    function invariant_claimedTotalIsSumOfClaims() public view {
        for (uint256 t; t < 2; ++t) {
            uint256 sum;
            for (uint256 p; p < 4; ++p) {
                sum += escrow.claimed(handler.payee(p), address(tokens[t]));
            }
            (, uint256 claimedTotal) = escrow.tokenTotals(address(tokens[t]));
            assertEq(claimedTotal, sum, "claimed total == sum of claims");
        }
    }

    /// @dev The trees are honest: a token's leaves (pending epoch included) sum to its
    ///      settled total, so every leaf can be paid in full.
    function invariant_settledEqualsSumOfLeaves() public view {
        for (uint256 t; t < 2; ++t) {
            uint256 sum;
            for (uint256 p; p < 4; ++p) {
                sum += handler.ghostCumulative(t, p);
            }
            (uint256 settled,) = escrow.tokenTotals(address(tokens[t]));
            assertEq(settled, sum, "settled == sum of leaves");
        }
    }

    /// @dev Money in equals money out or still inside: funded - withdrawn == budgets + settled.
    function invariant_budgetsConserved() public view {
        for (uint256 t; t < 2; ++t) {
            (uint256 settled,) = escrow.tokenTotals(address(tokens[t]));
            assertEq(
                handler.ghostFunded(t) - handler.ghostWithdrawn(t),
                _remainingOf(tokens[t]) + settled,
                "funded - withdrawn == remaining + settled"
            );
        }
    }

    function invariant_rootsFollowSettlement() public view {
        (,,,, bool paused) = escrow.settlementState();
        (bytes32 current, bytes32 previous) = escrow.claimableRoots();
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(current, paused ? bytes32(0) : handler.ghostCurrentRoot(), "current root");
        assertEq(previous, paused ? bytes32(0) : handler.ghostPreviousRoot(), "previous root");
        assertEq(pending, handler.ghostPendingRoot(), "pending root");
    }
}
