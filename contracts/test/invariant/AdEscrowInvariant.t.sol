// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {AdEscrow} from "../../src/AdEscrow.sol";
import {TestToken} from "../mocks/TestToken.sol";
import {AdEscrowHandler} from "./AdEscrowHandler.sol";

/// @notice Whatever advertisers, the settler (honest or not), the guardian and payees do: the
///         escrow never holds less than it has locked, it locks exactly the budgets plus the
///         pending epoch's debits, claims never pay out more than activated epochs debited,
///         and nobody is paid beyond the leaf their token's current root gives them.
contract AdEscrowInvariantTest is Test {
    uint256 internal constant TOKENS = 2;
    uint256 internal constant PAYEES = 4;

    AdEscrow internal escrow;
    AdEscrowHandler internal handler;
    TestToken[TOKENS] internal tokens;

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

    function _locked(uint256 t) internal view returns (uint256 locked) {
        (,, locked) = escrow.tokenState(address(tokens[t]));
    }

    function _claimedSum(uint256 t) internal view returns (uint256 sum) {
        for (uint256 p; p < PAYEES; ++p) {
            sum += escrow.claimed(handler.index(t, p));
        }
    }

    /// @dev The cap, as the escrow enforces it: no claim leaves less than `locked` behind.
    function invariant_balanceCoversLocked() public view {
        for (uint256 t; t < TOKENS; ++t) {
            assertGe(tokens[t].balanceOf(address(escrow)), _locked(t), "balance >= locked");
        }
    }

    /// @dev What the cap is for: payees are only ever paid out of activated debits, never
    ///      out of budgets or a pending epoch, even under dishonest roots.
    function invariant_claimedNeverExceedsActivatedDebits() public view {
        for (uint256 t; t < TOKENS; ++t) {
            uint256 claimed = _claimedSum(t);
            assertLe(claimed, handler.ghostActivated(t), "claimed <= activated debits");
            assertEq(claimed, handler.ghostClaimed(t), "claimed == sum of what claims paid");
        }
    }

    /// @dev `locked` is every campaign's budget plus the pending epoch's debits: funding adds
    ///      to it, withdrawals and activation take from it, settling and revoking move
    ///      amounts between budgets and pending debits without changing it.
    function invariant_lockedIsBudgetsPlusPendingDebits() public view {
        for (uint256 t; t < TOKENS; ++t) {
            assertEq(
                _locked(t),
                _remainingOf(tokens[t]) + handler.ghostPending(t),
                "locked == remaining budgets + pending debits"
            );
        }
    }

    /// @dev Money in equals money out or still inside.
    function invariant_balanceIsFundedMinusPaidOut() public view {
        for (uint256 t; t < TOKENS; ++t) {
            assertEq(
                tokens[t].balanceOf(address(escrow)),
                handler.ghostFunded(t) - handler.ghostWithdrawn(t) - _claimedSum(t),
                "balance == funded - withdrawn - claimed"
            );
        }
    }

    /// @dev Budgets only ever become debits (pending, then activated) or go back to their
    ///      advertisers: funded - withdrawn == budgets + pending + activated debits.
    function invariant_budgetsConserved() public view {
        for (uint256 t; t < TOKENS; ++t) {
            assertEq(
                handler.ghostFunded(t) - handler.ghostWithdrawn(t),
                _remainingOf(tokens[t]) + handler.ghostPending(t) + handler.ghostActivated(t),
                "funded - withdrawn == remaining + pending + activated"
            );
        }
    }

    function invariant_noAccountPaidBeyondItsLeaf() public view {
        for (uint256 t; t < TOKENS; ++t) {
            for (uint256 p; p < PAYEES; ++p) {
                uint256 claimed = escrow.claimed(handler.index(t, p));
                assertEq(tokens[t].balanceOf(handler.payee(p)), claimed, "received == claimed");
                assertLe(claimed, handler.ghostClaimable(t, p), "claimed <= current leaf");
            }
        }
        // Claims write only their own indexes' halves.
        assertEq(escrow.claimed(TOKENS * PAYEES), 0, "no index past the payees");
        assertEq(escrow.claimed(TOKENS * PAYEES + 1), 0, "no index past the payees");
    }

    /// @dev A token's leaves (pending epoch included) add up to its activated and pending
    ///      debits plus whatever dishonest trees promised beyond them.
    function invariant_leavesAreDebitsPlusOverpromises() public view {
        for (uint256 t; t < TOKENS; ++t) {
            uint256 sum;
            for (uint256 p; p < PAYEES; ++p) {
                sum += handler.ghostCumulative(t, p);
            }
            assertEq(
                sum,
                handler.ghostActivated(t) + handler.ghostPending(t) + handler.ghostOverpromised(t)
                    + handler.ghostPendingOverpromised(t),
                "leaves == debits + overpromises"
            );
        }
    }

    /// @dev Each token's current and previous roots are those of the last two activated
    ///      epochs that listed it (the current one parked, so reading zero, while paused), and
    ///      the tokens are listed in the order they first got a root.
    function invariant_rootsFollowSettlement() public view {
        (,,,, bool paused) = escrow.settlementState();
        for (uint256 t; t < TOKENS; ++t) {
            (bytes16 root, bytes16 previousRoot,) = escrow.tokenState(address(tokens[t]));
            bytes16 expected = paused ? bytes16(0) : bytes16(handler.ghostRoot(t));
            assertEq(root, expected, "current root");
            // Hidden while paused: no claim can use it then.
            bytes16 expectedPrevious = paused ? bytes16(0) : bytes16(handler.ghostPreviousRoot(t));
            assertEq(previousRoot, expectedPrevious, "previous root");
        }
        (bytes32 pending,) = escrow.pendingRoot();
        assertEq(pending, handler.ghostPendingRoot(), "pending root");
        assertEq(escrow.tokens(), handler.ghostTokenList(), "tokens listed");
    }
}
