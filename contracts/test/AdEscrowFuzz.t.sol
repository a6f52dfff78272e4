// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {TestToken} from "./mocks/TestToken.sol";
import {AdEscrowTestBase} from "./utils/AdEscrowTestBase.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice Fuzzed amounts and sequences: budgets, debits across campaigns, settlement
///         sequences, claims in random order.
contract AdEscrowFuzzTest is AdEscrowTestBase {
    /// @dev What a token's campaigns hold in all (`locked`) is packed in 128 bits: two
    ///      campaigns of one token at this budget still fit.
    uint256 internal constant MAX_BUDGET = type(uint128).max / 2;

    function _id(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("fuzz campaign", i));
    }

    /// @dev Campaigns alternate between the two tokens: even ids usd, odd ids eur.
    function _token(uint256 i) internal view returns (TestToken) {
        return i % 2 == 0 ? usd : eur;
    }

    // ---------------------------------------------------------------------------------
    // Budgets
    // ---------------------------------------------------------------------------------

    function testFuzz_openCampaign_recordsAnyBudget(uint256 amount, uint40 duration) public {
        amount = bound(amount, 1, type(uint128).max);
        duration = uint40(bound(duration, 1, type(uint40).max - block.timestamp));
        uint40 end = uint40(block.timestamp) + duration;
        _mintAndApprove(advertiser, usd, amount);
        vm.prank(advertiser);
        escrow.openCampaign(CAMPAIGN_A, address(usd), amount, end);

        assertEq(_remaining(CAMPAIGN_A), amount, "remaining");
        assertEq(escrow.campaign(CAMPAIGN_A).end, end, "end");
        assertEq(usd.balanceOf(address(escrow)), amount, "escrow balance");
        assertEq(_locked(usd), amount, "locked");
    }

    /// @dev Past 2^128 - 1 in all, a token's budgets do not fit `locked`: refused whole.
    function testFuzz_openCampaign_revertsPastUint128InAll(uint256 first, uint256 second) public {
        first = bound(first, 1, type(uint128).max);
        second = bound(second, type(uint128).max - first + 1, type(uint256).max - first);
        _open(advertiser, CAMPAIGN_A, usd, first);
        _mintAndApprove(otherAdvertiser, usd, second);
        uint40 end = _end();
        vm.expectRevert(
            abi.encodeWithSelector(
                SafeCast.SafeCastOverflowedUintDowncast.selector, 128, first + second
            )
        );
        vm.prank(otherAdvertiser);
        escrow.openCampaign(CAMPAIGN_B, address(usd), second, end);
        assertEq(_locked(usd), first, "locked unchanged");
        assertEq(usd.balanceOf(address(escrow)), first, "nothing taken");
    }

    function testFuzz_fund_addsAnyAmount(uint256 initial, uint256 extra) public {
        initial = bound(initial, 1, type(uint128).max - 1);
        extra = bound(extra, 1, type(uint128).max - initial);
        _open(advertiser, CAMPAIGN_A, usd, initial);
        _mintAndApprove(stranger, usd, extra);

        vm.prank(stranger);
        escrow.fund(CAMPAIGN_A, extra);
        assertEq(_remaining(CAMPAIGN_A), initial + extra, "remaining");
        assertEq(usd.balanceOf(address(escrow)), _remaining(CAMPAIGN_A), "escrow balance");
        assertEq(_locked(usd), initial + extra, "locked");
    }

    function testFuzz_withdraw_returnsBudgetMinusDebits(uint256 budget, uint256 debit) public {
        budget = bound(budget, 1, MAX_BUDGET);
        debit = bound(debit, 1, budget);
        _open(advertiser, CAMPAIGN_A, usd, budget);
        _settle(1, keccak256("root"), _debits(CAMPAIGN_A, debit), _totals(usd, debit));
        vm.warp(uint256(escrow.campaign(CAMPAIGN_A).end) + GRACE);

        vm.prank(advertiser);
        if (debit == budget) {
            vm.expectRevert(
                abi.encodeWithSelector(IAdEscrow.AdEscrowNothingToWithdraw.selector, CAMPAIGN_A)
            );
            escrow.withdraw(CAMPAIGN_A);
        } else {
            assertEq(escrow.withdraw(CAMPAIGN_A), budget - debit, "withdrawn");
        }
        assertEq(usd.balanceOf(address(escrow)), debit, "settled stays");
        assertEq(_locked(usd), 0, "nothing locked");
    }

    // ---------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------

    function testFuzz_settle_debitsWithinBudgetAcrossCampaigns(
        uint256[4] memory budgets,
        uint256[4] memory amounts
    ) public {
        IAdEscrow.Debit[] memory debits = new IAdEscrow.Debit[](4);
        uint256[2] memory sums;
        for (uint256 i; i < 4; ++i) {
            budgets[i] = bound(budgets[i], 1, MAX_BUDGET);
            amounts[i] = bound(amounts[i], 1, budgets[i]);
            _open(i < 2 ? advertiser : otherAdvertiser, _id(i), _token(i), budgets[i]);
            debits[i] = IAdEscrow.Debit(_id(i), amounts[i]);
            sums[i % 2] += amounts[i];
        }
        _settle(1, keccak256("root"), debits, _totals(usd, sums[0], eur, sums[1]));

        for (uint256 i; i < 4; ++i) {
            assertEq(_remaining(_id(i)), budgets[i] - amounts[i], "remaining");
        }
        // No window: the debits left `locked` at once, and are the claimable surplus.
        assertEq(_locked(usd), _remaining(_id(0)) + _remaining(_id(2)), "usd locked");
        assertEq(_locked(eur), _remaining(_id(1)) + _remaining(_id(3)), "eur locked");
        assertEq(usd.balanceOf(address(escrow)), _locked(usd) + sums[0], "usd: budgets + claimable");
        assertEq(eur.balanceOf(address(escrow)), _locked(eur) + sums[1], "eur: budgets + claimable");
    }

    function testFuzz_settle_revertsOnDebitBeyondBudget(uint256 budget, uint256 debit) public {
        budget = bound(budget, 1, MAX_BUDGET);
        debit = bound(debit, budget + 1, type(uint128).max);
        _open(advertiser, CAMPAIGN_A, usd, budget);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAdEscrow.AdEscrowInsufficientBudget.selector, CAMPAIGN_A, budget, debit
            )
        );
        _settle(1, keccak256("root"), _debits(CAMPAIGN_A, debit), _totals(usd, debit));
    }

    /// @dev Whenever the settlement comes, it debits exactly when it is before the campaign's
    ///      end (original or early-closed) plus the grace period, and never from then on. Half
    ///      the runs settle within a second of that boundary.
    function testFuzz_settle_closesAtEndPlusGrace(
        uint256 closeAfter,
        uint256 settleAfter,
        bool closeEarly,
        bool nearBoundary
    ) public {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        uint256 end = escrow.campaign(CAMPAIGN_A).end;
        if (closeEarly) {
            vm.warp(bound(closeAfter, block.timestamp, end - 1));
            vm.prank(advertiser);
            escrow.closeCampaign(CAMPAIGN_A);
            end = block.timestamp;
        }
        uint256 closedAt = end + GRACE;
        if (nearBoundary) vm.warp(closedAt - 1 + settleAfter % 3);
        else vm.warp(bound(settleAfter, block.timestamp, closedAt + 2 * GRACE));

        if (block.timestamp >= closedAt) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAdEscrow.AdEscrowSettlementClosed.selector, CAMPAIGN_A, closedAt
                )
            );
            _settle(1, keccak256("root"), _debits(CAMPAIGN_A, 1), _totals(usd, 1));
            assertEq(_remaining(CAMPAIGN_A), BUDGET, "untouched");
        } else {
            _settle(1, keccak256("root"), _debits(CAMPAIGN_A, 1), _totals(usd, 1));
            assertEq(_remaining(CAMPAIGN_A), BUDGET - 1, "debited");
        }
    }

    function testFuzz_settle_sequenceDrawsDownBudgets(uint256 seed, uint256 epochs) public {
        epochs = bound(epochs, 1, 12);
        uint256[3] memory budgets;
        for (uint256 i; i < 3; ++i) {
            budgets[i] = bound(uint256(keccak256(abi.encode(seed, "budget", i))), 1, 1e15);
            _open(advertiser, _id(i), _token(i), budgets[i]);
        }
        uint256[3] memory spent;
        for (uint256 e = 1; e <= epochs; ++e) {
            uint256 i = uint256(keccak256(abi.encode(seed, "pick", e))) % 3;
            uint256 left = budgets[i] - spent[i];
            if (left == 0) continue;
            uint256 amount = bound(uint256(keccak256(abi.encode(seed, "debit", e))), 1, left);
            _settle(
                _lastEpoch() + 1,
                keccak256(abi.encode(e)),
                _debits(_id(i), amount),
                _totals(_token(i), amount)
            );
            spent[i] += amount;
        }
        for (uint256 i; i < 3; ++i) {
            assertEq(_remaining(_id(i)), budgets[i] - spent[i], "remaining");
        }
        assertEq(_locked(usd), _remaining(_id(0)) + _remaining(_id(2)), "usd locked");
        assertEq(_locked(eur), _remaining(_id(1)), "eur locked");
        assertEq(
            usd.balanceOf(address(escrow)) - _locked(usd), spent[0] + spent[2], "usd claimable"
        );
    }

    function testFuzz_revoke_restoresExactly(uint256[2] memory budgets, uint256[2] memory amounts)
        public
    {
        _setWindow(1 days);
        for (uint256 i; i < 2; ++i) {
            budgets[i] = bound(budgets[i], 1, MAX_BUDGET);
            amounts[i] = bound(amounts[i], 1, budgets[i]);
            _open(advertiser, _id(i), _token(i), budgets[i]);
        }
        IAdEscrow.Debit[] memory debits = _debits(_id(0), amounts[0], _id(1), amounts[1]);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, amounts[0], eur, amounts[1]);
        _settle(1, keccak256("root"), debits, totals);
        // Pending debits stay locked.
        assertEq(_locked(usd), budgets[0], "usd locked while pending");
        assertEq(_locked(eur), budgets[1], "eur locked while pending");
        vm.prank(guardian);
        escrow.revoke(1, debits, totals);

        assertEq(_remaining(_id(0)), budgets[0], "usd campaign restored");
        assertEq(_remaining(_id(1)), budgets[1], "eur campaign restored");
        assertEq(_locked(usd), budgets[0], "usd locked");
        assertEq(_locked(eur), budgets[1], "eur locked");
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "usd: exactly the budget");
    }

    /// @dev However much anyone adds to the debited campaigns while the epoch is pending,
    ///      revoke restores the debits on top of it.
    function testFuzz_revoke_restoresOnTopOfAnyTopUp(
        uint256 budget,
        uint256 debit,
        uint256 topUp,
        uint256 otherTopUp
    ) public {
        _setWindow(1 days);
        budget = bound(budget, 1, MAX_BUDGET);
        debit = bound(debit, 1, budget);
        _open(advertiser, _id(0), usd, budget);
        _open(advertiser, _id(2), usd, BUDGET);
        IAdEscrow.Debit[] memory debits = _debits(_id(0), debit, _id(2), BUDGET);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, debit + BUDGET);
        _settle(1, keccak256("root"), debits, totals);

        // Two top-ups within what `locked` can hold at all.
        topUp = bound(topUp, 1, type(uint128).max - _locked(usd));
        _mintAndApprove(stranger, usd, topUp);
        vm.prank(stranger);
        escrow.fund(_id(0), topUp);
        otherTopUp = bound(otherTopUp, 0, type(uint128).max - _locked(usd));
        if (otherTopUp > 0) {
            _mintAndApprove(stranger, usd, otherTopUp);
            vm.prank(stranger);
            escrow.fund(_id(2), otherTopUp);
        }

        vm.warp(block.timestamp + 1 days - 1);
        vm.prank(guardian);
        escrow.revoke(1, debits, totals);

        assertEq(_remaining(_id(0)), budget + topUp, "first campaign restored");
        assertEq(_remaining(_id(2)), BUDGET + otherTopUp, "second campaign restored");
        assertEq(_locked(usd), _remaining(_id(0)) + _remaining(_id(2)), "locked == budgets");
        assertEq(
            usd.balanceOf(address(escrow)),
            _remaining(_id(0)) + _remaining(_id(2)),
            "balance == budgets"
        );
    }

    /// @dev Unpaused, revoke works for any delay shorter than the window and never from its
    ///      end on. Paused (the pause stops the clock), it works after any delay.
    function testFuzz_revoke_onlyWithinWindowUnlessPaused(uint40 window, uint256 delay, bool paused)
        public
    {
        window = uint40(bound(window, 1, 365 days));
        delay = bound(delay, 0, 2 * uint256(window));
        _setWindow(window);
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, 300e6);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, 300e6);
        _settle(1, keccak256("root"), debits, totals);
        uint40 claimableAt = _pendingClaimableAt();
        if (paused) {
            vm.prank(guardian);
            escrow.pause();
        }
        vm.warp(block.timestamp + delay);

        vm.prank(guardian);
        if (!paused && delay >= window) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAdEscrow.AdEscrowChallengeWindowOver.selector, 1, claimableAt
                )
            );
            escrow.revoke(1, debits, totals);
            assertEq(_remaining(CAMPAIGN_A), BUDGET - 300e6, "still debited");
        } else {
            escrow.revoke(1, debits, totals);
            assertEq(_remaining(CAMPAIGN_A), BUDGET, "restored");
        }
        // Either way nothing was activated: the whole budget is still locked.
        assertEq(_locked(usd), BUDGET, "usd locked");
    }

    // ---------------------------------------------------------------------------------
    // Claims
    // ---------------------------------------------------------------------------------

    /// @dev Entry k is payee k / 2's earnings in token k % 2, under payee index k (so each
    ///      payee's two tokens share a claimed slot).
    struct Ledger {
        address[3] payees;
        uint256[6] cumulative;
        uint256[6] previousCumulative;
        bytes32[] current;
        bytes32[] previous;
    }

    /// @dev Three payees earn both tokens over several epochs; after each epoch some of them
    ///      claim, in an order drawn from the seed, against the current or the previous root.
    ///      In the end everyone holds exactly their cumulative earnings.
    function testFuzz_claim_randomOrderPaysCumulativeExactly(uint256 seed, uint256 epochs) public {
        epochs = bound(epochs, 1, 5);
        _open(advertiser, _id(0), usd, MAX_BUDGET);
        _open(advertiser, _id(1), eur, MAX_BUDGET);
        Ledger memory ledger;
        ledger.payees = [alice, bob, carol];

        for (uint256 e = 1; e <= epochs; ++e) {
            _earn(ledger, seed, e);
            uint256 start = uint256(keccak256(abi.encode(seed, "start", e)));
            for (uint256 n; n < 6; ++n) {
                // Stride 5 is coprime with 6: every entry once, in a seed-dependent order.
                uint256 k = (start + n * 5) % 6;
                uint256 draw = uint256(keccak256(abi.encode(seed, "draw", e, k))) % 3;
                if (draw != 0) _claimEntry(ledger, k, draw == 2 && e > 1);
            }
        }

        for (uint256 k; k < 6; ++k) {
            _claimEntry(ledger, k, false);
            TestToken token = _token(k);
            assertEq(token.balanceOf(ledger.payees[k / 2]), ledger.cumulative[k], "holds all");
            assertEq(escrow.claimed(k), ledger.cumulative[k], "claimed all");
        }
        for (uint256 t; t < 2; ++t) {
            TestToken token = _token(t);
            assertEq(token.balanceOf(address(escrow)), _remaining(_id(t)), "only budget left");
            assertEq(_locked(token), _remaining(_id(t)), "locked == budget");
        }
    }

    /// @dev Epoch `e`: random earnings per entry, a new tree, a settlement debiting them.
    function _earn(Ledger memory ledger, uint256 seed, uint256 e) internal {
        uint256[2] memory earned;
        ledger.previous = ledger.current;
        ledger.current = new bytes32[](6);
        for (uint256 k; k < 6; ++k) {
            uint256 amount = bound(uint256(keccak256(abi.encode(seed, e, k))), 0, 1e12);
            ledger.previousCumulative[k] = ledger.cumulative[k];
            ledger.cumulative[k] += amount;
            earned[k % 2] += amount;
            ledger.current[k] = _leafAt(ledger.payees[k / 2], _token(k), k, ledger.cumulative[k]);
        }
        _settleEarnings(PayoutTree.root(ledger.current), earned);
    }

    function _claimEntry(Ledger memory ledger, uint256 k, bool usePrevious) internal {
        address payee = ledger.payees[k / 2];
        address token = address(_token(k));
        bytes32[] memory tree = usePrevious ? ledger.previous : ledger.current;
        uint256 leafAmount = usePrevious ? ledger.previousCumulative[k] : ledger.cumulative[k];
        bytes32[] memory proof = PayoutTree.proof(tree, tree[k]);

        uint256 already = escrow.claimed(k);
        uint256 neighbour = escrow.claimed(k ^ 1);
        uint256 paid = escrow.claim(payee, token, PayoutTree.pack(k, leafAmount), proof);
        assertEq(paid, leafAmount > already ? leafAmount - already : 0, "pays the difference");
        assertLe(escrow.claimed(k), ledger.cumulative[k], "never ahead of earnings");
        assertEq(escrow.claimed(k ^ 1), neighbour, "the slot's other half untouched");
    }

    /// @dev Both tokens are in every tree, so both are always listed (zero allowed): both
    ///      move to each new root, and the previous root stays the last epoch's.
    function _settleEarnings(bytes32 root, uint256[2] memory earned) internal {
        uint256 count = (earned[0] > 0 ? 1 : 0) + (earned[1] > 0 ? 1 : 0);
        IAdEscrow.Debit[] memory debits = new IAdEscrow.Debit[](count);
        uint256 n;
        for (uint256 t; t < 2; ++t) {
            if (earned[t] == 0) continue;
            debits[n++] = IAdEscrow.Debit(_id(t), earned[t]);
        }
        _settle(_lastEpoch() + 1, root, debits, _totals(usd, earned[0], eur, earned[1]));
    }

    function testFuzz_claim_neverPaysMoreThanCumulative(
        uint256 first,
        uint256 second,
        bool oldProofFirst
    ) public {
        first = bound(first, 1, MAX_BUDGET / 2);
        second = bound(second, first, MAX_BUDGET);
        _open(advertiser, CAMPAIGN_A, usd, MAX_BUDGET);
        bytes32[] memory leaves1 = _leaves(_leaf(alice, usd, first), _leaf(bob, usd, 0));
        bytes32[] memory leaves2 = _leaves(_leaf(alice, usd, second), _leaf(bob, usd, 0));
        // With `second == first` epoch 2 is not settled; the proofs are then both epoch 1's.
        _settle(1, PayoutTree.root(leaves1), _debits(CAMPAIGN_A, first), _totals(usd, first));
        if (second > first) {
            _settle(
                2,
                PayoutTree.root(leaves2),
                _debits(CAMPAIGN_A, second - first),
                _totals(usd, second - first)
            );
        }

        if (oldProofFirst) {
            assertEq(_claim(alice, usd, first, leaves1), first, "old proof first");
            assertEq(_claim(alice, usd, second, leaves2), second - first, "then the rest");
        } else {
            assertEq(_claim(alice, usd, second, leaves2), second, "new proof first");
            assertEq(_claim(alice, usd, first, leaves1), 0, "old proof pays nothing");
        }
        assertEq(_claim(alice, usd, second, leaves2), 0, "replay pays nothing");
        assertEq(usd.balanceOf(alice), second, "alice holds her cumulative");
    }

    /// @dev Two payees sharing a claimed slot, over two epochs.
    struct Neighbours {
        uint256[2] indexes;
        address[2] payees;
        uint256[2] first;
        uint256[2] second;
        bytes32[] leaves1;
        bytes32[] leaves2;
    }

    /// @dev Two payees at indexes 2k and 2k + 1, anywhere in the 128-bit index space, share a
    ///      claimed slot. Over two epochs, in either order, each is paid exactly its own
    ///      cumulative amounts and its claims never move the other's half.
    function testFuzz_claim_slotNeighboursNeverDisturbEachOther(
        uint256 pair,
        uint256[2] memory firstAmounts,
        uint256[2] memory rises,
        bool lowFirst
    ) public {
        Neighbours memory n;
        pair = bound(pair, 0, type(uint128).max >> 1);
        n.indexes = [2 * pair, 2 * pair + 1];
        n.payees = [alice, bob];
        for (uint256 i; i < 2; ++i) {
            n.first[i] = bound(firstAmounts[i], 0, 1e30);
            n.second[i] = n.first[i] + bound(rises[i], 0, 1e30);
        }
        n.leaves1 = _leaves(
            _leafAt(alice, usd, n.indexes[0], n.first[0]),
            _leafAt(bob, usd, n.indexes[1], n.first[1])
        );
        n.leaves2 = _leaves(
            _leafAt(alice, usd, n.indexes[0], n.second[0]),
            _leafAt(bob, usd, n.indexes[1], n.second[1])
        );
        _open(advertiser, CAMPAIGN_A, usd, 4e30);

        _settleUsd(1, PayoutTree.root(n.leaves1), n.first[0] + n.first[1]);
        uint256 a = lowFirst ? 0 : 1;
        _claimNeighbour(n, a, false);
        _claimNeighbour(n, 1 - a, false);
        _settleUsd(
            2, PayoutTree.root(n.leaves2), n.second[0] + n.second[1] - n.first[0] - n.first[1]
        );
        // The other way round this time.
        _claimNeighbour(n, 1 - a, true);
        _claimNeighbour(n, a, true);

        for (uint256 i; i < 2; ++i) {
            assertEq(escrow.claimed(n.indexes[i]), n.second[i], "claimed");
            assertEq(usd.balanceOf(n.payees[i]), n.second[i], "received");
        }
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "exactly the budget left");
    }

    /// @dev Neighbour `i` claims in epoch 1 or 2 (then also replays and tries its stale
    ///      proof); the other's half must not move.
    function _claimNeighbour(Neighbours memory n, uint256 i, bool secondEpoch) internal {
        uint256 other = escrow.claimed(n.indexes[1 - i]);
        if (!secondEpoch) {
            assertEq(
                _claimAt(n.payees[i], usd, n.indexes[i], n.first[i], n.leaves1),
                n.first[i],
                "first epoch paid"
            );
        } else {
            assertEq(
                _claimAt(n.payees[i], usd, n.indexes[i], n.second[i], n.leaves2),
                n.second[i] - n.first[i],
                "the rise"
            );
            assertEq(_claimAt(n.payees[i], usd, n.indexes[i], n.first[i], n.leaves1), 0, "stale");
            assertEq(_claimAt(n.payees[i], usd, n.indexes[i], n.second[i], n.leaves2), 0, "replay");
        }
        assertEq(escrow.claimed(n.indexes[1 - i]), other, "neighbour untouched");
    }

    /// @dev Whatever a (bad) root promises, claims pay out at most what activated epochs
    ///      debited: `activated` is current, `pending` waits out its window. Alice's leaf
    ///      promises `promised`; it is paid in full exactly when it fits in what is
    ///      activated, and otherwise reverts and moves nothing. After activation the pending
    ///      debits count too.
    function testFuzz_claim_neverPaysBeyondActivatedDebits(
        uint256 activated,
        uint256 pending,
        uint256 promised
    ) public {
        activated = bound(activated, 1, BUDGET / 2);
        pending = bound(pending, 1, BUDGET / 2);
        promised = bound(promised, 1, BUDGET);
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        bytes32[] memory bad = _leaves(_leaf(alice, usd, promised), _leaf(bob, usd, 0));
        _settleUsd(1, PayoutTree.root(bad), activated);
        _setWindow(1 days);
        IAdEscrow.Debit[] memory debits = _debits(CAMPAIGN_A, pending);
        IAdEscrow.TokenTotal[] memory totals = _totals(usd, pending);
        _settle(2, keccak256("epoch 2"), debits, totals);

        _claimOrExpectCap(bad, promised, promised <= activated);
        if (promised > activated) {
            vm.warp(_pendingClaimableAt());
            _activate(debits, totals);
            _claimOrExpectCap(bad, promised, promised <= activated + pending);
        }
        _assertCovered(usd);
    }

    function _claimOrExpectCap(bytes32[] memory leaves, uint256 promised, bool fits) internal {
        uint256 balance = usd.balanceOf(address(escrow));
        bytes32[] memory proof = PayoutTree.proof(leaves, _leaf(alice, usd, promised));
        uint256 claim = _pack(alice, usd, promised);
        if (fits) {
            assertEq(escrow.claim(alice, address(usd), claim, proof), promised, "paid in full");
            assertEq(usd.balanceOf(alice), promised, "alice holds it");
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
            );
            escrow.claim(alice, address(usd), claim, proof);
            assertEq(usd.balanceOf(address(escrow)), balance, "nothing moved");
            assertEq(escrow.claimed(ALICE_USD), 0, "nothing recorded");
        }
    }

    /// @dev Settles `epoch` debiting campaign A by `amount` (if any), listing usd.
    function _settleUsd(uint64 epoch, bytes32 root, uint256 amount) internal {
        IAdEscrow.Debit[] memory debits =
            amount == 0 ? new IAdEscrow.Debit[](0) : _debits(CAMPAIGN_A, amount);
        _settle(epoch, root, debits, _totals(usd, amount));
    }
}
