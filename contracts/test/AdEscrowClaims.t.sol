// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {IAdEscrow} from "../src/interfaces/IAdEscrow.sol";
import {TestToken} from "./mocks/TestToken.sol";
import {AdEscrowTestBase} from "./utils/AdEscrowTestBase.sol";
import {PayoutTree} from "./utils/PayoutTree.sol";

/// @notice The payee's side: claim and claimMany (pausing them: AdEscrowPause.t.sol).
contract AdEscrowClaimsTest is AdEscrowTestBase {
    /// @dev Epoch 1 from `_settleFirstEpoch`: alice 100 usd + 200 eur, bob 200 usd.
    bytes32[] internal leaves1;

    function setUp() public override {
        super.setUp();
        leaves1 = _settleFirstEpoch();
    }

    // ---------------------------------------------------------------------------------
    // claim
    // ---------------------------------------------------------------------------------

    function test_claim_paysCumulativeToAccountWhoeverCalls() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        uint256 claim = _pack(alice, usd, 100e6);

        vm.expectEmitAnonymous(address(escrow));
        emit IAdEscrow.Claimed(claim);
        vm.prank(stranger);
        uint256 amount = escrow.claim(alice, address(usd), claim, proof);

        assertEq(amount, 100e6, "amount");
        assertEq(usd.balanceOf(alice), 100e6, "alice balance");
        assertEq(usd.balanceOf(stranger), 0, "caller gets nothing");
        assertEq(escrow.claimed(ALICE_USD), 100e6, "claimed");
        assertEq(usd.balanceOf(address(escrow)), BUDGET - 100e6, "escrow balance");
        _assertCovered(usd);
    }

    /// @dev The claim's own log is one word with no topics (the contract's only anonymous
    ///      event), followed by the token's Transfer, which names the account and amount.
    function test_claim_logsOneTopiclessWordThenTheTransfer() public {
        uint256 claim = _pack(bob, usd, 200e6);
        bytes32[] memory proof = _proof(leaves1, bob, 200e6);
        vm.recordLogs();
        escrow.claim(bob, address(usd), claim, proof);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(logs.length, 2, "two logs");
        assertEq(logs[0].emitter, address(escrow), "escrow's log first");
        assertEq(logs[0].topics.length, 0, "no topics");
        assertEq(logs[0].data, abi.encode(claim), "index and cumulative amount");
        assertEq(logs[1].emitter, address(usd), "then the token's");
        assertEq(logs[1].topics[2], bytes32(uint256(uint160(bob))), "Transfer to bob");
        assertEq(abi.decode(logs[1].data, (uint256)), 200e6, "Transfer amount");
    }

    function test_claim_replayPaysNothing() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        uint256 claim = _pack(alice, usd, 100e6);
        escrow.claim(alice, address(usd), claim, proof);

        vm.recordLogs();
        uint256 amount = escrow.claim(alice, address(usd), claim, proof);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        assertEq(amount, 0, "amount");
        assertEq(logs.length, 0, "no event, no transfer");
        assertEq(usd.balanceOf(alice), 100e6, "alice balance");
        assertEq(escrow.claimed(ALICE_USD), 100e6, "claimed");
    }

    function test_claim_laterEpochPaysTheDifference() public {
        _claim(alice, usd, 100e6, leaves1);
        bytes32[] memory leaves2 = _settleSecondEpoch();

        vm.expectEmitAnonymous(address(escrow));
        emit IAdEscrow.Claimed(_pack(alice, usd, 300e6));
        assertEq(_claim(alice, usd, 300e6, leaves2), 200e6, "difference");
        assertEq(usd.balanceOf(alice), 300e6, "alice balance");
        assertEq(escrow.claimed(ALICE_USD), 300e6, "claimed");
    }

    function test_claim_previousRootStillWorksAfterRotation() public {
        _settleSecondEpoch();
        // Bob built his proof against epoch 1 just before epoch 2 landed.
        assertEq(_claim(bob, usd, 200e6, leaves1), 200e6, "paid from previous root");
        // eur moved to epoch 2's root too; alice's epoch 1 proof still works as the previous.
        assertEq(_previousRoot(eur), PayoutTree.half(leaves1), "eur previous root");
        assertEq(_claim(alice, eur, 200e6, leaves1), 200e6, "eur from previous root");
    }

    function test_claim_previousRootOnlyPaysUpToItsCumulative() public {
        bytes32[] memory leaves2 = _settleSecondEpoch();
        _claim(alice, usd, 300e6, leaves2);
        // The stale epoch 1 proof is still valid but pays nothing any more.
        assertEq(_claim(alice, usd, 100e6, leaves1), 0, "stale proof pays nothing");
        assertEq(usd.balanceOf(alice), 300e6, "alice balance");
        assertEq(escrow.claimed(ALICE_USD), 300e6, "claimed does not go back");
    }

    function test_claim_revertsOnRootTwoRotationsOld() public {
        _settleSecondEpoch();
        bytes32[] memory leaves3 = _leaves(_leaf(alice, usd, 350e6), _leaf(bob, usd, 250e6));
        _settle(3, PayoutTree.root(leaves3), _debits(CAMPAIGN_A, 50e6), _totals(usd, 50e6));

        bytes32[] memory proof = _proof(leaves1, bob, 200e6);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(bob, address(usd), _pack(bob, usd, 200e6), proof);
        // eur was not in epoch 3's totals: its roots are still epoch 2's and epoch 1's.
        assertEq(_claim(alice, eur, 200e6, leaves1), 200e6, "eur keeps its previous root");
    }

    function test_claim_revertsOnInvalidProof() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        uint256 claim = _pack(alice, usd, 100e6);
        bytes memory invalid = abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector);
        // Wrong amount.
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), claim + 1, proof);
        // Wrong index, same amount: bob's, her eur one, and one nobody has.
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), PayoutTree.pack(BOB_USD, 100e6), proof);
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), PayoutTree.pack(ALICE_EUR, 100e6), proof);
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), PayoutTree.pack(1 << 100, 100e6), proof);
        // Wrong account.
        vm.expectRevert(invalid);
        escrow.claim(carol, address(usd), claim, proof);
        // Tampered proof, truncated proof, no proof.
        bytes32[] memory tampered = _proof(leaves1, alice, 100e6);
        tampered[0] = bytes32(uint256(tampered[0]) ^ 1);
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), claim, tampered);
        bytes32[] memory truncated = new bytes32[](proof.length - 1);
        for (uint256 i; i < truncated.length; ++i) {
            truncated[i] = proof[i];
        }
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), claim, truncated);
        vm.expectRevert(invalid);
        escrow.claim(alice, address(usd), claim, new bytes32[](0));
        assertEq(escrow.claimed(ALICE_USD), 0, "nothing claimed");
    }

    /// @dev One tree pays both tokens, but each leaf names its token: a proof of an eur leaf
    ///      cannot claim usd, whether usd is on the same root or not.
    function test_claim_proofForOneTokenCannotClaimAnother() public {
        bytes32[] memory eurProof = PayoutTree.proof(leaves1, _leaf(alice, eur, 200e6));
        uint256 eurClaim = _pack(alice, eur, 200e6);
        assertEq(_root(usd), _root(eur), "both tokens on epoch 1's root");
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(usd), eurClaim, eurProof);

        // usd moves on alone; the eur proof is still eur's current root and still not usd's.
        bytes32[] memory leaves2 = _leaves(_leaf(alice, usd, 300e6), _leaf(bob, usd, 250e6));
        _settle(2, PayoutTree.root(leaves2), _debits(CAMPAIGN_A, 250e6), _totals(usd, 250e6));
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(usd), eurClaim, eurProof);
        // Nor the other way round: a usd proof of the new root for eur.
        bytes32[] memory usdProof = _proof(leaves2, alice, 300e6);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claim(alice, address(eur), _pack(alice, usd, 300e6), usdProof);

        assertEq(escrow.claim(alice, address(eur), eurClaim, eurProof), 200e6, "eur pays eur");
        assertEq(usd.balanceOf(alice), 0, "no usd");
    }

    function test_claim_revertsWithoutRoot() public {
        // A fresh escrow that never settled.
        super.setUp();
        bytes32[] memory proof = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNoRoot.selector));
        escrow.claim(alice, address(usd), _pack(alice, usd, 100e6), proof);
    }

    /// @dev Roots are per token: other tokens having roots gives a new token none.
    function test_claim_revertsForTokenWithoutRootWhileOthersHaveOne() public {
        TestToken gbp = new TestToken("Test GBP", "tGBP");
        bytes32[] memory proof = PayoutTree.proof(leaves1, _leaf(alice, usd, 100e6));
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowNoRoot.selector));
        escrow.claim(alice, address(gbp), _pack(alice, usd, 100e6), proof);
    }

    function test_claim_revertsWhilePaused() public {
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowPaused.selector));
        escrow.claim(alice, address(usd), _pack(alice, usd, 100e6), proof);
    }

    // ---------------------------------------------------------------------------------
    // claim: the cap
    // ---------------------------------------------------------------------------------

    /// @dev A dishonest but activated tree promising 100 + 150 usd where its epoch debited
    ///      200: the claim that would dip into the campaign's budget reverts and moves
    ///      nothing.
    function test_claim_revertsBeyondActivatedDebits() public {
        // A fresh escrow.
        super.setUp();
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        bytes32[] memory leaves = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 150e6));
        _settle(1, PayoutTree.root(leaves), _debits(CAMPAIGN_A, 200e6), _totals(usd, 200e6));

        assertEq(_claim(alice, usd, 100e6, leaves), 100e6, "first claim fits");
        bytes32[] memory proof = _proof(leaves, bob, 150e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(bob, address(usd), _pack(bob, usd, 150e6), proof);

        assertEq(usd.balanceOf(bob), 0, "bob unpaid");
        assertEq(escrow.claimed(BOB_USD), 0, "bob's claim not recorded");
        assertEq(escrow.claimed(ALICE_USD), 100e6, "alice's half of the slot kept");
        assertEq(usd.balanceOf(address(escrow)), BUDGET - 100e6, "escrow balance");
        assertEq(_locked(usd), BUDGET - 200e6, "A's budget still locked");
        // Up to the last unit the budget is safe: the cap is `balance >= locked` exactly.
        assertEq(usd.balanceOf(address(escrow)) - _locked(usd), 100e6, "100 claimable left");
    }

    /// @dev The boundary: a claim leaving exactly `locked` behind is paid, one unit more is not.
    function test_claim_payableUpToExactlyLocked() public {
        super.setUp();
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        bytes32[] memory leaves = _leaves(_leaf(alice, usd, 200e6), _leaf(bob, usd, 200e6 + 1));
        _settle(1, PayoutTree.root(leaves), _debits(CAMPAIGN_A, 200e6), _totals(usd, 200e6));

        bytes32[] memory proof = _proof(leaves, bob, 200e6 + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(bob, address(usd), _pack(bob, usd, 200e6 + 1), proof);
        assertEq(_claim(alice, usd, 200e6, leaves), 200e6, "exactly the debits");
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "balance == locked");
    }

    function test_claim_revertsOnLeafAboveActivatedDebits() public {
        // Epoch 2 debits nothing but lists usd, so usd moves to a tree promising carol more
        // than all of epoch 1's 300.
        bytes32[] memory leaves = _leaves(_leaf(carol, usd, 301e6), _leaf(alice, usd, 0));
        _settle(2, PayoutTree.root(leaves), new IAdEscrow.Debit[](0), _totals(usd, 0));
        bytes32[] memory proof = _proof(leaves, carol, 301e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(carol, address(usd), _pack(carol, usd, 301e6), proof);
        assertEq(usd.balanceOf(carol), 0, "carol unpaid");
    }

    /// @dev The cap is per token, not per root or per payee: what activated epochs debited
    ///      and nobody claimed yet is one pool. A bad root can pay one payee out of another's
    ///      share (which is why roots wait out a challenge window), but never out of budgets.
    function test_claim_capIsOnePoolPerToken() public {
        bytes32[] memory leaves = _leaves(_leaf(carol, usd, 300e6), _leaf(alice, usd, 100e6));
        _settle(2, PayoutTree.root(leaves), new IAdEscrow.Debit[](0), _totals(usd, 0));
        assertEq(_claim(carol, usd, 300e6, leaves), 300e6, "carol takes the whole pool");
        // Alice's epoch 1 proof is still good, but the pool is empty.
        bytes32[] memory proof = _proof(leaves1, alice, 100e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claim(alice, address(usd), _pack(alice, usd, 100e6), proof);
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "budgets untouched");
    }

    // ---------------------------------------------------------------------------------
    // claim: indexes and the claimed slots
    // ---------------------------------------------------------------------------------

    /// @dev Alice (index 0) and bob (index 1) share claimed slot 0. Each claims on their own,
    ///      in either order: first claims, rises, replays and stale proofs, and each half of
    ///      the slot only ever moves for its own index.
    function test_claim_sharedSlotNeighboursLowFirst() public {
        _claimNeighbours(true);
    }

    function test_claim_sharedSlotNeighboursHighFirst() public {
        _claimNeighbours(false);
    }

    function _claimNeighbours(bool lowFirst) internal {
        assertEq(ALICE_USD / 2, BOB_USD / 2, "one slot");
        (address first, address second) = lowFirst ? (alice, bob) : (bob, alice);
        uint256 firstAmount = lowFirst ? 100e6 : 200e6;
        uint256 secondAmount = lowFirst ? 200e6 : 100e6;

        assertEq(_claim(first, usd, firstAmount, leaves1), firstAmount, "first neighbour paid");
        assertEq(_claimed(first, usd), firstAmount, "first's half");
        assertEq(_claimed(second, usd), 0, "second's half untouched");
        assertEq(_claim(first, usd, firstAmount, leaves1), 0, "first's replay");

        assertEq(_claim(second, usd, secondAmount, leaves1), secondAmount, "second paid in full");
        assertEq(_claimed(second, usd), secondAmount, "second's half");
        assertEq(_claimed(first, usd), firstAmount, "first's half kept");

        // Epoch 2: alice 300, bob 250. Each pays only the rise over its own half.
        bytes32[] memory leaves2 = _settleSecondEpoch();
        uint256 firstNext = first == alice ? 300e6 : 250e6;
        uint256 secondNext = second == alice ? 300e6 : 250e6;
        assertEq(_claim(second, usd, secondNext, leaves2), secondNext - secondAmount, "2nd rise");
        assertEq(_claim(first, usd, firstNext, leaves2), firstNext - firstAmount, "1st rise");
        assertEq(_claim(alice, usd, 100e6, leaves1), 0, "alice's stale proof");
        assertEq(_claim(bob, usd, 200e6, leaves1), 0, "bob's stale proof");
        assertEq(escrow.claimed(ALICE_USD), 300e6, "alice's half");
        assertEq(escrow.claimed(BOB_USD), 250e6, "bob's half");
        assertEq(usd.balanceOf(alice), 300e6, "alice holds her cumulative");
        assertEq(usd.balanceOf(bob), 250e6, "bob holds his cumulative");
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "all of usd claimed");
    }

    /// @dev The claimed amounts are laid out as docs/ENCODING.md says: indexes 2k and 2k+1 in
    ///      the low and high 128 bits of one slot, at the base keccak256("adescrow.claimed")
    ///      with its low 128 bits cleared, plus k.
    function test_claimed_twoIndexesPackedInOneSlot() public {
        _claim(alice, usd, 100e6, leaves1);
        _claim(bob, usd, 200e6, leaves1);
        _claim(alice, eur, 200e6, leaves1);
        uint256 base = uint256(keccak256("adescrow.claimed")) >> 128 << 128;

        assertEq(
            uint256(vm.load(address(escrow), bytes32(base))),
            200e6 << 128 | 100e6,
            "slot 0: bob high, alice low"
        );
        assertEq(
            uint256(vm.load(address(escrow), bytes32(base + 1))),
            200e6,
            "slot 1: alice eur low, index 3 empty"
        );
    }

    /// @dev Indexes are 128 bits: a payee at 2^100 (and its neighbour) is paid like any other,
    ///      and its slot lies far from the small indexes'.
    function test_claim_largeIndexesWork() public {
        uint256 big = 1 << 100;
        uint256 last = type(uint128).max;
        bytes32[] memory leaves = _leaves(
            _leafAt(alice, usd, big, 40e6),
            _leafAt(bob, usd, big + 1, 60e6),
            _leafAt(carol, usd, last, 50e6)
        );
        _settle(2, PayoutTree.root(leaves), _debits(CAMPAIGN_A, 150e6), _totals(usd, 150e6));

        assertEq(_claimAt(bob, usd, big + 1, 60e6, leaves), 60e6, "bob at 2^100 + 1");
        assertEq(_claimAt(alice, usd, big, 40e6, leaves), 40e6, "alice at 2^100");
        assertEq(_claimAt(carol, usd, last, 50e6, leaves), 50e6, "carol at 2^128 - 1");
        assertEq(_claimAt(alice, usd, big, 40e6, leaves), 0, "replay");
        assertEq(escrow.claimed(big), 40e6, "2^100");
        assertEq(escrow.claimed(big + 1), 60e6, "2^100 + 1");
        assertEq(escrow.claimed(last), 50e6, "2^128 - 1");
        assertEq(escrow.claimed(last - 1), 0, "its neighbour");
        assertEq(escrow.claimed(ALICE_USD), 0, "alice's usual index untouched");
        assertEq(escrow.claimed(BOB_USD), 0, "bob's usual index untouched");
        // Her usual index still pays her epoch 1 leaf: the indexes are separate payees.
        assertEq(_claim(alice, usd, 100e6, leaves1), 100e6, "index 0 separate");
    }

    /// @dev The escrow keys what was claimed by index alone: an index stands for one
    ///      (account, token) for good, and a tree that gave one index to two would have them
    ///      share one claimed amount. Here alice's usd index 0 is reused for her eur leaf.
    function test_claimed_isKeyedByIndexAlone() public {
        _claim(alice, usd, 100e6, leaves1);
        bytes32[] memory reused = _leaves(_leafAt(alice, eur, ALICE_USD, 150e6), _leaf(bob, eur, 0));
        _settle(2, PayoutTree.root(reused), new IAdEscrow.Debit[](0), _totals(eur, 0));
        assertEq(_claimAt(alice, eur, ALICE_USD, 150e6, reused), 50e6, "only the rise over usd");
    }

    // ---------------------------------------------------------------------------------
    // claimMany
    // ---------------------------------------------------------------------------------

    function test_claimMany_paysSeveralAccountsAndTokens() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](3);
        claims[0] = IAdEscrow.Claim(
            alice, address(usd), _pack(alice, usd, 100e6), _proof(leaves1, alice, 100e6)
        );
        claims[1] =
            IAdEscrow.Claim(bob, address(usd), _pack(bob, usd, 200e6), _proof(leaves1, bob, 200e6));
        claims[2] = IAdEscrow.Claim(
            alice,
            address(eur),
            _pack(alice, eur, 200e6),
            PayoutTree.proof(leaves1, _leaf(alice, eur, 200e6))
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
        assertEq(usd.balanceOf(address(escrow)), _locked(usd), "usd: only budgets left");
        assertEq(eur.balanceOf(address(escrow)), _locked(eur), "eur: only budgets left");
    }

    function test_claimMany_repeatedEntryPaysOnce() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](2);
        claims[0] =
            IAdEscrow.Claim(bob, address(usd), _pack(bob, usd, 200e6), _proof(leaves1, bob, 200e6));
        claims[1] = claims[0];
        uint256[] memory amounts = escrow.claimMany(claims);
        assertEq(amounts[0], 200e6, "first");
        assertEq(amounts[1], 0, "repeat");
        assertEq(usd.balanceOf(bob), 200e6, "bob usd");
    }

    function test_claimMany_revertsAllOnOneBadProof() public {
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](2);
        claims[0] =
            IAdEscrow.Claim(bob, address(usd), _pack(bob, usd, 200e6), _proof(leaves1, bob, 200e6));
        claims[1] = IAdEscrow.Claim(
            alice, address(usd), _pack(alice, usd, 1), _proof(leaves1, alice, 100e6)
        );
        vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowInvalidProof.selector));
        escrow.claimMany(claims);
        assertEq(usd.balanceOf(bob), 0, "bob unpaid");
        assertEq(escrow.claimed(BOB_USD), 0, "bob's claim undone");
    }

    function test_claimMany_revertsAllWhenOneExceedsTheCap() public {
        // Epoch 2 lists usd with nothing debited and gives carol 1 usd more than is left.
        bytes32[] memory leaves = _leaves(_leaf(carol, usd, 1), _leaf(bob, usd, 200e6));
        _settle(2, PayoutTree.root(leaves), new IAdEscrow.Debit[](0), _totals(usd, 0));
        _claim(alice, usd, 100e6, leaves1);
        IAdEscrow.Claim[] memory claims = new IAdEscrow.Claim[](2);
        claims[0] =
            IAdEscrow.Claim(bob, address(usd), _pack(bob, usd, 200e6), _proof(leaves, bob, 200e6));
        claims[1] =
            IAdEscrow.Claim(carol, address(usd), _pack(carol, usd, 1), _proof(leaves, carol, 1));
        vm.expectRevert(
            abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, address(usd))
        );
        escrow.claimMany(claims);
        assertEq(usd.balanceOf(bob), 0, "bob unpaid");
        assertEq(escrow.claimed(BOB_USD), 0, "bob's claim undone");
    }

    function test_claimMany_emptyBatchReturnsNothing() public {
        uint256[] memory amounts = escrow.claimMany(new IAdEscrow.Claim[](0));
        assertEq(amounts.length, 0, "amounts length");
    }
}

/// @notice The Solidity tree builder the claim tests use agrees with the Rust one: same
///         leaves, same root, same proofs for the shared vectors (docs/ENCODING.md).
contract PayoutTreeTest is Test {
    function test_build_matchesSharedVectors() public view {
        string memory json = vm.readFile("contracts/test/vectors/encoding.json");
        address[] memory accounts = vm.parseJsonAddressArray(json, ".payoutTree.accounts");
        address[] memory tokens = vm.parseJsonAddressArray(json, ".payoutTree.tokens");
        uint256[] memory indexes = vm.parseJsonUintArray(json, ".payoutTree.indexes");
        string[] memory amounts = vm.parseJsonStringArray(json, ".payoutTree.cumulativeAmounts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".payoutTree.leafHashes");

        bytes32[] memory leaves = new bytes32[](accounts.length);
        for (uint256 i; i < leaves.length; ++i) {
            leaves[i] =
                PayoutTree.leaf(accounts[i], tokens[i], indexes[i], vm.parseUint(amounts[i]));
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

    function test_pack_putsTheIndexAboveTheAmount() public pure {
        assertEq(PayoutTree.pack(0, 5), 5, "index 0");
        assertEq(PayoutTree.pack(1, 5), (1 << 128) + 5, "index 1");
        assertEq(
            PayoutTree.pack(type(uint128).max, type(uint128).max), type(uint256).max, "both full"
        );
    }
}
