// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {AdEscrow} from "../../src/AdEscrow.sol";
import {IAdEscrow} from "../../src/interfaces/IAdEscrow.sol";
import {TestToken} from "../mocks/TestToken.sol";
import {PayoutTree} from "./PayoutTree.sol";

/// @notice Shared fixture: an escrow with an admin, a settler and a guardian, two 6-decimal
///         tokens, two advertisers and three payees, plus builders for settlements and trees.
abstract contract AdEscrowTestBase is Test {
    uint40 internal constant GRACE = 7 days;
    uint40 internal constant DURATION = 30 days;
    uint256 internal constant BUDGET = 1000e6;

    bytes32 internal constant CAMPAIGN_A = keccak256("campaign A");
    bytes32 internal constant CAMPAIGN_B = keccak256("campaign B");
    bytes32 internal constant CAMPAIGN_C = keccak256("campaign C");

    AdEscrow internal escrow;
    TestToken internal usd;
    TestToken internal eur;

    address internal admin = makeAddr("admin");
    address internal settler = makeAddr("settler");
    address internal guardian = makeAddr("guardian");
    address internal advertiser = makeAddr("advertiser");
    address internal otherAdvertiser = makeAddr("otherAdvertiser");
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");
    address internal carol = makeAddr("carol");
    address internal stranger = makeAddr("stranger");

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        escrow = new AdEscrow(admin, GRACE, 0);
        usd = new TestToken("Test USD", "tUSD");
        eur = new TestToken("Test EUR", "tEUR");
        vm.startPrank(admin);
        escrow.grantRole(escrow.SETTLER_ROLE(), settler);
        escrow.grantRole(escrow.GUARDIAN_ROLE(), guardian);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------------------------
    // Campaigns
    // ---------------------------------------------------------------------------------

    function _end() internal view returns (uint40) {
        return uint40(block.timestamp) + DURATION;
    }

    function _mintAndApprove(address who, TestToken token, uint256 amount) internal {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(escrow), amount);
    }

    function _open(address who, bytes32 id, TestToken token, uint256 amount) internal {
        _mintAndApprove(who, token, amount);
        vm.prank(who);
        escrow.openCampaign(id, address(token), amount, _end());
    }

    function _remaining(bytes32 id) internal view returns (uint256) {
        return escrow.campaign(id).remaining;
    }

    /// @dev What the escrow keeps of `token`: every budget plus the pending epoch's debits.
    function _locked(TestToken token) internal view returns (uint256 locked) {
        (,, locked) = escrow.tokenState(address(token));
    }

    /// @dev The high 128 bits of `token`'s current root (zero while paused or before any).
    function _root(TestToken token) internal view returns (bytes16 root) {
        (root,,) = escrow.tokenState(address(token));
    }

    /// @dev The high 128 bits of `token`'s previous root, still accepted by claims.
    function _previousRoot(TestToken token) internal view returns (bytes16 previousRoot) {
        (, previousRoot,) = escrow.tokenState(address(token));
    }

    /// @dev The high 128 bits of `root`: what the escrow keeps of a root and compares.
    function _high(bytes32 root) internal pure returns (bytes16) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes16(root);
    }

    /// @dev The cap: claims can never leave the escrow holding less than `locked`.
    function _assertCovered(TestToken token) internal view {
        assertGe(token.balanceOf(address(escrow)), _locked(token), "balance covers locked");
    }

    // ---------------------------------------------------------------------------------
    // Settlements
    // ---------------------------------------------------------------------------------

    function _debits(bytes32 id, uint256 amount)
        internal
        pure
        returns (IAdEscrow.Debit[] memory debits)
    {
        debits = new IAdEscrow.Debit[](1);
        debits[0] = IAdEscrow.Debit(id, amount);
    }

    function _debits(bytes32 id0, uint256 amount0, bytes32 id1, uint256 amount1)
        internal
        pure
        returns (IAdEscrow.Debit[] memory debits)
    {
        debits = new IAdEscrow.Debit[](2);
        debits[0] = IAdEscrow.Debit(id0, amount0);
        debits[1] = IAdEscrow.Debit(id1, amount1);
    }

    function _totals(TestToken token, uint256 amount)
        internal
        pure
        returns (IAdEscrow.TokenTotal[] memory totals)
    {
        totals = new IAdEscrow.TokenTotal[](1);
        totals[0] = IAdEscrow.TokenTotal(address(token), amount);
    }

    function _totals(TestToken token0, uint256 amount0, TestToken token1, uint256 amount1)
        internal
        pure
        returns (IAdEscrow.TokenTotal[] memory totals)
    {
        totals = new IAdEscrow.TokenTotal[](2);
        totals[0] = IAdEscrow.TokenTotal(address(token0), amount0);
        totals[1] = IAdEscrow.TokenTotal(address(token1), amount1);
    }

    /// @dev `totals` with one more entry at the end.
    function _append(IAdEscrow.TokenTotal[] memory totals, address token, uint256 amount)
        internal
        pure
        returns (IAdEscrow.TokenTotal[] memory longer)
    {
        longer = new IAdEscrow.TokenTotal[](totals.length + 1);
        for (uint256 i; i < totals.length; ++i) {
            longer[i] = totals[i];
        }
        longer[totals.length] = IAdEscrow.TokenTotal(token, amount);
    }

    function _settle(
        uint64 epoch,
        bytes32 root,
        IAdEscrow.Debit[] memory debits,
        IAdEscrow.TokenTotal[] memory totals
    ) internal {
        vm.prank(settler);
        escrow.settle(epoch, root, debits, totals);
    }

    function _lastEpoch() internal view returns (uint64 lastEpoch) {
        (lastEpoch,,,,) = escrow.settlementState();
    }

    function _currentEpoch() internal view returns (uint64 currentEpoch) {
        (, currentEpoch,,,) = escrow.settlementState();
    }

    function _pendingClaimableAt() internal view returns (uint40 claimableAt) {
        (,, claimableAt,,) = escrow.settlementState();
    }

    /// @dev What `activate` takes for the pending epoch's debits.
    function _debitsHash(IAdEscrow.Debit[] memory debits) internal pure returns (bytes32) {
        return keccak256(abi.encode(debits));
    }

    /// @dev The pending epoch's commitment, as `pendingRoot` reports it.
    function _commitment(IAdEscrow.Debit[] memory debits, IAdEscrow.TokenTotal[] memory totals)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(_debitsHash(debits), totals));
    }

    /// @dev Activates the pending epoch with the debits and totals it was settled with, as
    ///      anyone reading its `Settled` event would.
    function _activate(IAdEscrow.Debit[] memory debits, IAdEscrow.TokenTotal[] memory totals)
        internal
    {
        escrow.activate(_debitsHash(debits), totals);
    }

    function _setWindow(uint40 window) internal {
        vm.prank(admin);
        escrow.setChallengeWindow(window);
    }

    // ---------------------------------------------------------------------------------
    // Trees
    // ---------------------------------------------------------------------------------

    /// @dev Payee indexes, as the relayer assigns them: one per (account, token) for good.
    ///      Alice's and bob's usd indexes share claimed slot 0, their eur ones slot 1.
    uint256 internal constant ALICE_USD = 0;
    uint256 internal constant BOB_USD = 1;
    uint256 internal constant ALICE_EUR = 2;
    uint256 internal constant BOB_EUR = 3;
    uint256 internal constant CAROL_USD = 4;
    uint256 internal constant CAROL_EUR = 5;

    function _index(address account, TestToken token) internal view returns (uint256) {
        bool isUsd = token == usd;
        require(isUsd || token == eur, "no index for this token");
        if (account == alice) return isUsd ? ALICE_USD : ALICE_EUR;
        if (account == bob) return isUsd ? BOB_USD : BOB_EUR;
        if (account == carol) return isUsd ? CAROL_USD : CAROL_EUR;
        revert("no index for this account");
    }

    /// @dev The `indexAndAmount` word of `account`'s leaf in `token`.
    function _pack(address account, TestToken token, uint256 cumulative)
        internal
        view
        returns (uint256)
    {
        return PayoutTree.pack(_index(account, token), cumulative);
    }

    /// @dev `account`'s leaf in `token` under its own index.
    function _leaf(address account, TestToken token, uint256 cumulative)
        internal
        view
        returns (bytes32)
    {
        return PayoutTree.leaf(account, address(token), _pack(account, token, cumulative));
    }

    /// @dev A leaf under an explicit index.
    function _leafAt(address account, TestToken token, uint256 index, uint256 cumulative)
        internal
        pure
        returns (bytes32)
    {
        return PayoutTree.leaf(account, address(token), index, cumulative);
    }

    /// @dev What `account`'s index in `token` has claimed.
    function _claimed(address account, TestToken token) internal view returns (uint256) {
        return escrow.claimed(_index(account, token));
    }

    function _leaves(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](2);
        leaves[0] = a;
        leaves[1] = b;
    }

    function _leaves(bytes32 a, bytes32 b, bytes32 c)
        internal
        pure
        returns (bytes32[] memory leaves)
    {
        leaves = new bytes32[](3);
        leaves[0] = a;
        leaves[1] = b;
        leaves[2] = c;
    }

    function _claim(address account, TestToken token, uint256 cumulative, bytes32[] memory leaves)
        internal
        returns (uint256)
    {
        return _claimAt(account, token, _index(account, token), cumulative, leaves);
    }

    function _claimAt(
        address account,
        TestToken token,
        uint256 index,
        uint256 cumulative,
        bytes32[] memory leaves
    ) internal returns (uint256) {
        bytes32[] memory path = PayoutTree.proof(leaves, _leafAt(account, token, index, cumulative));
        return escrow.claim(account, address(token), PayoutTree.pack(index, cumulative), path);
    }

    /// @dev Campaign A (usd, advertiser) and B (eur, otherAdvertiser) open; epoch 1 debits
    ///      A by 300 and B by 200 and pays alice 100 + bob 200 usd, alice 200 eur.
    function _settleFirstEpoch() internal returns (bytes32[] memory leaves) {
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _open(otherAdvertiser, CAMPAIGN_B, eur, BUDGET);
        leaves = _leaves(_leaf(alice, usd, 100e6), _leaf(bob, usd, 200e6), _leaf(alice, eur, 200e6));
        _settle(
            1,
            PayoutTree.root(leaves),
            _debits(CAMPAIGN_A, 300e6, CAMPAIGN_B, 200e6),
            _totals(usd, 300e6, eur, 200e6)
        );
    }

    /// @dev Epoch 2 pays alice 300 usd, bob 250 usd in total, debiting A by 250 more. Alice's
    ///      eur leaf is unchanged; eur is listed with a zero total, so it moves to the new
    ///      root as well.
    function _settleSecondEpoch() internal returns (bytes32[] memory leaves2) {
        leaves2 =
            _leaves(_leaf(alice, usd, 300e6), _leaf(bob, usd, 250e6), _leaf(alice, eur, 200e6));
        _settle(
            2, PayoutTree.root(leaves2), _debits(CAMPAIGN_A, 250e6), _totals(usd, 250e6, eur, 0)
        );
    }

    /// @dev The proof of `account`'s usd leaf of `cumulative` in `leaves`.
    function _proof(bytes32[] memory leaves, address account, uint256 cumulative)
        internal
        view
        returns (bytes32[] memory)
    {
        return PayoutTree.proof(leaves, _leaf(account, usd, cumulative));
    }
}
