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

    function _settled(TestToken token) internal view returns (uint256 settled) {
        (settled,) = escrow.tokenTotals(address(token));
    }

    function _claimedTotal(TestToken token) internal view returns (uint256 claimedTotal) {
        (, claimedTotal) = escrow.tokenTotals(address(token));
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

    function _currentRoot() internal view returns (bytes32 current) {
        (current,) = escrow.claimableRoots();
    }

    function _setWindow(uint40 window) internal {
        vm.prank(admin);
        escrow.setChallengeWindow(window);
    }

    // ---------------------------------------------------------------------------------
    // Trees
    // ---------------------------------------------------------------------------------

    function _leaf(address account, TestToken token, uint256 cumulative)
        internal
        pure
        returns (bytes32)
    {
        return PayoutTree.leaf(account, address(token), cumulative);
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
        bytes32[] memory path = PayoutTree.proof(leaves, _leaf(account, token, cumulative));
        return escrow.claim(account, address(token), cumulative, path);
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
}
