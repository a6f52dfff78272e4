// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Test} from "forge-std/Test.sol";
import {AdEscrow} from "../../src/AdEscrow.sol";
import {IAdEscrow} from "../../src/interfaces/IAdEscrow.sol";
import {TestToken} from "../mocks/TestToken.sol";
import {PayoutTree} from "../utils/PayoutTree.sol";

/// @notice Drives AdEscrow through every role. A ghost ledger keeps each payee's cumulative
///         earnings per token. Most settlements spread exactly what they debit over the
///         payees; one in five is dishonest and promises one payee more than was debited, so
///         that the cap (a claim may not leave the escrow holding less than `locked`) is
///         exercised: the handler predicts from the balance and `locked` whether each claim
///         fits, and expects `AdEscrowExceedsSettled` when it does not.
/// @dev Entry `t * PAYEES + p` is payee p's cumulative earnings in token t, and also its payee
///      index (so indexes 2k and 2k + 1 share a claimed slot).
contract AdEscrowHandler is Test {
    uint256 internal constant TOKENS = 2;
    uint256 internal constant PAYEES = 4;
    uint256 internal constant ENTRIES = TOKENS * PAYEES;
    uint256 internal constant ADVERTISERS = 3;
    uint256 internal constant MAX_CAMPAIGNS = 12;
    uint256 internal constant MAX_AMOUNT = 1e15;

    AdEscrow public immutable escrow;
    address internal immutable admin;
    address internal immutable settler;
    address internal immutable guardian;
    TestToken[TOKENS] internal tokens;
    address[PAYEES] internal payees;
    address[ADVERTISERS] internal advertisers;

    bytes32[] public campaignIds;

    /// @dev Latest unrevoked cumulative earnings, pending epoch included.
    uint256[ENTRIES] internal cumulative;
    /// @dev Cumulative earnings before the pending epoch, restored by a revoke.
    uint256[ENTRIES] internal beforePending;
    /// @dev The amounts each root ever posted commits to.
    mapping(bytes32 root => uint256[ENTRIES]) internal rootAmounts;

    /// @dev Per token: the full roots the escrow keeps the high halves of.
    bytes32[TOKENS] public ghostRoot;
    bytes32[TOKENS] public ghostPreviousRoot;
    /// @dev Tokens in the order they first got a root, as `tokens()` lists them.
    address[] internal ghostTokens;
    bytes32 public ghostPendingRoot;
    /// @dev When the current pause began: the challenge clock stands still from then.
    uint256 public ghostPausedAt;
    IAdEscrow.Debit[] internal pendingDebits;
    IAdEscrow.TokenTotal[] internal pendingTotals;

    /// @dev Per token: everything advertisers paid in and took back.
    uint256[TOKENS] public ghostFunded;
    uint256[TOKENS] public ghostWithdrawn;
    /// @dev Per token: debits of activated epochs (claimable), and of the pending one.
    uint256[TOKENS] public ghostActivated;
    uint256[TOKENS] public ghostPending;
    /// @dev Per token: everything claims paid out.
    uint256[TOKENS] public ghostClaimed;
    /// @dev Per token: what dishonest trees promised beyond their debits, activated or
    ///      current, and pending.
    uint256[TOKENS] public ghostOverpromised;
    uint256[TOKENS] public ghostPendingOverpromised;

    mapping(string action => uint256) public calls;

    constructor(
        AdEscrow escrow_,
        address admin_,
        address settler_,
        address guardian_,
        TestToken[TOKENS] memory tokens_
    ) {
        escrow = escrow_;
        admin = admin_;
        settler = settler_;
        guardian = guardian_;
        tokens = tokens_;
        for (uint256 p; p < PAYEES; ++p) {
            payees[p] = makeAddr(string.concat("payee", vm.toString(p)));
        }
        for (uint256 a; a < ADVERTISERS; ++a) {
            advertisers[a] = makeAddr(string.concat("advertiser", vm.toString(a)));
        }
    }

    // ---------------------------------------------------------------------------------
    // Views for the invariants
    // ---------------------------------------------------------------------------------

    function campaignCount() external view returns (uint256) {
        return campaignIds.length;
    }

    function token(uint256 t) external view returns (TestToken) {
        return tokens[t];
    }

    function payee(uint256 p) external view returns (address) {
        return payees[p];
    }

    /// @notice The payee index of payee p in token t.
    function index(uint256 t, uint256 p) public pure returns (uint256) {
        return t * PAYEES + p;
    }

    function ghostCumulative(uint256 t, uint256 p) external view returns (uint256) {
        return cumulative[index(t, p)];
    }

    /// @notice What `payees[p]` may have received of token `t`: its leaf in t's current root.
    function ghostClaimable(uint256 t, uint256 p) external view returns (uint256) {
        return rootAmounts[ghostRoot[t]][index(t, p)];
    }

    function ghostTokenList() external view returns (address[] memory) {
        return ghostTokens;
    }

    // ---------------------------------------------------------------------------------
    // Advertisers
    // ---------------------------------------------------------------------------------

    function openCampaign(uint256 advertiserSeed, uint256 tokenSeed, uint256 amount, uint256 days_)
        external
    {
        if (campaignIds.length == MAX_CAMPAIGNS) return;
        address advertiser = advertisers[advertiserSeed % ADVERTISERS];
        uint256 t = tokenSeed % TOKENS;
        amount = bound(amount, 1, MAX_AMOUNT);
        uint40 end = uint40(block.timestamp + bound(days_, 1, 30) * 1 days);
        bytes32 id = keccak256(abi.encode("campaign", campaignIds.length));

        _mintAndApprove(advertiser, tokens[t], amount);
        vm.prank(advertiser);
        escrow.openCampaign(id, address(tokens[t]), amount, end);
        campaignIds.push(id);
        ghostFunded[t] += amount;
        ++calls["openCampaign"];
    }

    function fund(uint256 campaignSeed, uint256 funderSeed, uint256 amount) external {
        if (campaignIds.length == 0) return;
        bytes32 id = campaignIds[campaignSeed % campaignIds.length];
        IAdEscrow.Campaign memory c = escrow.campaign(id);
        if (c.end <= block.timestamp) return;
        address funder = advertisers[funderSeed % ADVERTISERS];
        amount = bound(amount, 1, MAX_AMOUNT);

        _mintAndApprove(funder, TestToken(c.token), amount);
        vm.prank(funder);
        escrow.fund(id, amount);
        ghostFunded[_tokenIndex(c.token)] += amount;
        ++calls["fund"];
    }

    function closeCampaign(uint256 campaignSeed) external {
        if (campaignIds.length == 0) return;
        bytes32 id = campaignIds[campaignSeed % campaignIds.length];
        IAdEscrow.Campaign memory c = escrow.campaign(id);
        if (c.end <= block.timestamp) return;
        vm.prank(c.advertiser);
        escrow.closeCampaign(id);
        ++calls["closeCampaign"];
    }

    /// @dev Waits for the campaign's end plus grace if needed, then withdraws.
    function withdraw(uint256 campaignSeed) external {
        if (campaignIds.length == 0) return;
        bytes32 id = campaignIds[campaignSeed % campaignIds.length];
        IAdEscrow.Campaign memory c = escrow.campaign(id);
        if (c.remaining == 0) return;
        uint256 availableAt = uint256(c.end) + escrow.gracePeriod();
        if (block.timestamp < availableAt) vm.warp(availableAt);

        vm.prank(c.advertiser);
        uint256 amount = escrow.withdraw(id);
        assertEq(amount, c.remaining, "withdraw pays the remaining budget");
        ghostWithdrawn[_tokenIndex(c.token)] += amount;
        ++calls["withdraw"];
    }

    // ---------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------

    /// @dev Debits up to three campaigns and spreads each token's debits over the payees. One
    ///      time in five the tree also promises one payee up to MAX_AMOUNT more than was
    ///      debited. A token is listed in the totals when its leaves change, and otherwise
    ///      when `listSeed` says so (a zero total), so that unlisted tokens keep their roots.
    function settle(uint256 seed, bool waitOutWindow, uint256 listSeed) external {
        (uint64 lastEpoch,, uint40 pendingAt, uint40 window, bool paused) = escrow.settlementState();
        if (paused) return;
        if (pendingAt != 0) {
            // A pending root must be activated (after its window) before the next settlement.
            if (!waitOutWindow) return;
            if (block.timestamp < pendingAt) vm.warp(pendingAt);
            escrow.activate(keccak256(abi.encode(pendingDebits)), pendingTotals);
            _promotePending();
        }

        (IAdEscrow.Debit[] memory debits, uint256[TOKENS] memory earned) = _pickDebits(seed);
        uint256[ENTRIES] memory next = cumulative;
        for (uint256 t; t < TOKENS; ++t) {
            uint256 left = earned[t];
            for (uint256 p; p < PAYEES; ++p) {
                uint256 share = p == PAYEES - 1
                    ? left
                    : bound(uint256(keccak256(abi.encode(seed, "share", t, p))), 0, left);
                next[index(t, p)] += share;
                left -= share;
            }
        }
        uint256[TOKENS] memory overpromised;
        if (seed % 5 == 0) {
            uint256 entry = uint256(keccak256(abi.encode(seed, "greedy"))) % ENTRIES;
            uint256 extra = bound(uint256(keccak256(abi.encode(seed, "extra"))), 1, MAX_AMOUNT);
            next[entry] += extra;
            overpromised[entry / PAYEES] = extra;
        }
        bool[TOKENS] memory listed;
        for (uint256 t; t < TOKENS; ++t) {
            listed[t] = earned[t] > 0 || overpromised[t] > 0 || (listSeed >> t) & 1 == 1;
        }
        IAdEscrow.TokenTotal[] memory totals = _totalsOf(earned, listed);
        bytes32 root = _rootOf(next);
        rootAmounts[root] = next;

        vm.prank(settler);
        escrow.settle(lastEpoch + 1, root, debits, totals);

        beforePending = cumulative;
        cumulative = next;
        delete pendingDebits;
        delete pendingTotals;
        for (uint256 i; i < debits.length; ++i) {
            pendingDebits.push(debits[i]);
        }
        for (uint256 i; i < totals.length; ++i) {
            pendingTotals.push(totals[i]);
        }
        ghostPendingRoot = root;
        for (uint256 t; t < TOKENS; ++t) {
            ghostPending[t] = earned[t];
            ghostPendingOverpromised[t] = overpromised[t];
        }
        // Without a window the root is current at once.
        if (window == 0) _promotePending();
        ++calls[overpromised[0] + overpromised[1] > 0 ? "settleDishonest" : "settle"];
    }

    /// @dev Tries to debit a campaign at or past its end plus grace (when the advertiser may
    ///      withdraw), which settle must refuse.
    function settleClosedCampaign(uint256 campaignSeed, uint256 amount) external {
        (uint64 lastEpoch,, uint40 pendingAt,, bool paused) = escrow.settlementState();
        // A pending root (activated or not) blocks every settlement first.
        if (paused || pendingAt != 0) return;
        uint256 count = campaignIds.length;
        uint256 start = count == 0 ? 0 : campaignSeed % count;
        for (uint256 i; i < count; ++i) {
            bytes32 id = campaignIds[(start + i) % count];
            IAdEscrow.Campaign memory c = escrow.campaign(id);
            uint256 closedAt = uint256(c.end) + escrow.gracePeriod();
            if (c.remaining == 0 || block.timestamp < closedAt) continue;

            amount = bound(amount, 1, c.remaining);
            IAdEscrow.Debit[] memory debits = new IAdEscrow.Debit[](1);
            debits[0] = IAdEscrow.Debit(id, amount);
            IAdEscrow.TokenTotal[] memory totals = new IAdEscrow.TokenTotal[](1);
            totals[0] = IAdEscrow.TokenTotal(c.token, amount);
            vm.expectRevert(
                abi.encodeWithSelector(IAdEscrow.AdEscrowSettlementClosed.selector, id, closedAt)
            );
            vm.prank(settler);
            escrow.settle(lastEpoch + 1, keccak256("closed"), debits, totals);
            ++calls["settleClosedCampaign"];
            return;
        }
    }

    /// @dev Activates the pending epoch (waiting out its window); first, when `tryWrong`,
    ///      with totals that are not the settled ones, which must be refused.
    function activate(bool tryWrong) external {
        (,, uint40 pendingAt,, bool paused) = escrow.settlementState();
        if (paused || pendingAt == 0) return;
        if (block.timestamp < pendingAt) vm.warp(pendingAt);
        bytes32 debitsHash = keccak256(abi.encode(pendingDebits));
        if (tryWrong) {
            IAdEscrow.TokenTotal[] memory wrong = new IAdEscrow.TokenTotal[](1);
            wrong[0] = IAdEscrow.TokenTotal(address(tokens[0]), type(uint128).max);
            vm.expectRevert(abi.encodeWithSelector(IAdEscrow.AdEscrowCommitmentMismatch.selector));
            escrow.activate(debitsHash, wrong);
            ++calls["activateWrong"];
        }
        escrow.activate(debitsHash, pendingTotals);
        _promotePending();
        ++calls["activate"];
    }

    /// @dev Revokes the pending epoch while its window is open (a pause stops the clock at
    ///      the moment it began); once the window is over, checks that revoke refuses and
    ///      changes nothing.
    function revoke() external {
        (uint64 lastEpoch,, uint40 pendingAt,, bool paused) = escrow.settlementState();
        if (pendingAt == 0) return;
        bool windowOver = (paused ? ghostPausedAt : block.timestamp) >= pendingAt;
        vm.prank(guardian);
        if (windowOver) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAdEscrow.AdEscrowChallengeWindowOver.selector, lastEpoch, pendingAt
                )
            );
            escrow.revoke(lastEpoch, pendingDebits, pendingTotals);
            ++calls["revokeTooLate"];
            return;
        }
        escrow.revoke(lastEpoch, pendingDebits, pendingTotals);
        cumulative = beforePending;
        ghostPendingRoot = bytes32(0);
        for (uint256 t; t < TOKENS; ++t) {
            // Back in the campaigns' budgets, which the escrow's `remaining` shows.
            ghostPending[t] = 0;
            ghostPendingOverpromised[t] = 0;
        }
        ++calls[paused && block.timestamp >= pendingAt ? "revokePausedAfterWindow" : "revoke"];
    }

    function setChallengeWindow(uint256 choice) external {
        uint40[3] memory windows = [uint40(0), 1 hours, 1 days];
        vm.prank(admin);
        escrow.setChallengeWindow(windows[choice % 3]);
        ++calls["setChallengeWindow"];
    }

    /// @dev Unpauses when paused; pauses one time in four, so runs are not mostly paused.
    function togglePause(uint256 seed) external {
        (,,,, bool paused) = escrow.settlementState();
        if (!paused && seed % 4 != 0) return;
        vm.prank(guardian);
        if (paused) {
            escrow.unpause();
        } else {
            escrow.pause();
            ghostPausedAt = block.timestamp;
        }
        ++calls["togglePause"];
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 3 days));
    }

    // ---------------------------------------------------------------------------------
    // Claims
    // ---------------------------------------------------------------------------------

    /// @dev Claims a payee's leaf in its token's current root, or in the previous one, from
    ///      anyone. Paused, or before the token has a root, the claim must revert; otherwise
    ///      it pays the rise over what the index claimed, unless that would leave the escrow
    ///      holding less than `locked`.
    function claim(uint256 payeeSeed, uint256 tokenSeed, bool usePrevious, uint256 callerSeed)
        external
    {
        uint256 t = tokenSeed % TOKENS;
        uint256 entry = index(t, payeeSeed % PAYEES);
        (,,,, bool paused) = escrow.settlementState();
        if (paused || ghostRoot[t] == bytes32(0)) {
            _claimWithoutRoot(t, entry, paused);
            return;
        }
        bytes32 root =
            usePrevious && ghostPreviousRoot[t] != bytes32(0) ? ghostPreviousRoot[t] : ghostRoot[t];
        uint256 amount = rootAmounts[root][entry];
        bytes32[] memory leaves = _leavesOf(rootAmounts[root]);
        IAdEscrow.Claim memory c = IAdEscrow.Claim(
            payees[entry % PAYEES],
            address(tokens[t]),
            PayoutTree.pack(entry, amount),
            PayoutTree.proof(leaves, leaves[entry])
        );
        uint256 already = escrow.claimed(entry);
        uint256 rise = amount > already ? amount - already : 0;
        bytes memory refusal = _refusal(t, rise);

        // The payee itself, another payee or an advertiser: tokens always go to the payee.
        vm.prank(callerSeed % 2 == 0 ? payees[callerSeed / 2 % PAYEES] : advertisers[0]);
        if (refusal.length > 0) {
            vm.expectRevert(refusal);
            escrow.claim(c.account, c.token, c.indexAndAmount, c.proof);
            ++calls["claimCapped"];
            return;
        }
        uint256 paid = escrow.claim(c.account, c.token, c.indexAndAmount, c.proof);
        assertEq(paid, rise, "claim pays the rise");
        ghostClaimed[t] += paid;
        ++calls["claim"];
    }

    /// @dev Paused, or before the token has a root, any claim reverts.
    function _claimWithoutRoot(uint256 t, uint256 entry, bool paused) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                paused ? IAdEscrow.AdEscrowPaused.selector : IAdEscrow.AdEscrowNoRoot.selector
            )
        );
        escrow.claim(payees[entry % PAYEES], address(tokens[t]), entry << 128, new bytes32[](0));
        ++calls[paused ? "claimPaused" : "claimNoRoot"];
    }

    /// @dev Why a claim paying `rise` of token `t` must fail, or nothing when it fits. Claims
    ///      may only pay the balance above `locked` (the cap); beyond the whole balance the
    ///      token's transfer fails before the cap is checked.
    function _refusal(uint256 t, uint256 rise) internal view returns (bytes memory) {
        address tokenAddress = address(tokens[t]);
        (,, uint256 locked) = escrow.tokenState(tokenAddress);
        uint256 balance = tokens[t].balanceOf(address(escrow));
        if (rise > balance) {
            return abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, tokenAddress);
        }
        if (rise > balance - locked) {
            return abi.encodeWithSelector(IAdEscrow.AdEscrowExceedsSettled.selector, tokenAddress);
        }
        return "";
    }

    // ---------------------------------------------------------------------------------
    // Internal
    // ---------------------------------------------------------------------------------

    /// @dev The pending epoch becomes current for the tokens it lists.
    function _promotePending() internal {
        for (uint256 i; i < pendingTotals.length; ++i) {
            uint256 t = _tokenIndex(pendingTotals[i].token);
            if (ghostRoot[t] == bytes32(0)) ghostTokens.push(pendingTotals[i].token);
            else ghostPreviousRoot[t] = ghostRoot[t];
            ghostRoot[t] = ghostPendingRoot;
        }
        for (uint256 t; t < TOKENS; ++t) {
            ghostActivated[t] += ghostPending[t];
            ghostPending[t] = 0;
            ghostOverpromised[t] += ghostPendingOverpromised[t];
            ghostPendingOverpromised[t] = 0;
        }
        ghostPendingRoot = bytes32(0);
    }

    /// @dev Up to three campaigns with budget left and still open to settlement (before their
    ///      end plus grace), scanning from a random one; each is debited at most half its
    ///      remaining budget (rounded up) so budgets last a while.
    function _pickDebits(uint256 seed)
        internal
        view
        returns (IAdEscrow.Debit[] memory debits, uint256[TOKENS] memory earned)
    {
        uint256 count = campaignIds.length;
        uint256 gracePeriod = escrow.gracePeriod();
        IAdEscrow.Debit[] memory buffer = new IAdEscrow.Debit[](3);
        uint256 n;
        uint256 start = count == 0 ? 0 : seed % count;
        for (uint256 i; i < count && n < 3; ++i) {
            bytes32 id = campaignIds[(start + i) % count];
            IAdEscrow.Campaign memory c = escrow.campaign(id);
            if (c.remaining == 0 || block.timestamp >= uint256(c.end) + gracePeriod) continue;
            uint256 amount =
                bound(uint256(keccak256(abi.encode(seed, "debit", i))), 1, (c.remaining + 1) / 2);
            buffer[n++] = IAdEscrow.Debit(id, amount);
            earned[_tokenIndex(c.token)] += amount;
        }
        debits = new IAdEscrow.Debit[](n);
        for (uint256 i; i < n; ++i) {
            debits[i] = buffer[i];
        }
    }

    function _totalsOf(uint256[TOKENS] memory earned, bool[TOKENS] memory listed)
        internal
        view
        returns (IAdEscrow.TokenTotal[] memory totals)
    {
        uint256 n;
        for (uint256 t; t < TOKENS; ++t) {
            if (listed[t]) ++n;
        }
        totals = new IAdEscrow.TokenTotal[](n);
        n = 0;
        for (uint256 t; t < TOKENS; ++t) {
            if (listed[t]) totals[n++] = IAdEscrow.TokenTotal(address(tokens[t]), earned[t]);
        }
    }

    function _leavesOf(uint256[ENTRIES] memory amounts)
        internal
        view
        returns (bytes32[] memory leaves)
    {
        leaves = new bytes32[](ENTRIES);
        for (uint256 i; i < ENTRIES; ++i) {
            leaves[i] = PayoutTree.leaf(
                payees[i % PAYEES], address(tokens[i / PAYEES]), PayoutTree.pack(i, amounts[i])
            );
        }
    }

    function _rootOf(uint256[ENTRIES] memory amounts) internal view returns (bytes32) {
        return PayoutTree.root(_leavesOf(amounts));
    }

    function _tokenIndex(address token_) internal view returns (uint256) {
        return token_ == address(tokens[0]) ? 0 : 1;
    }

    function _mintAndApprove(address who, TestToken token_, uint256 amount) internal {
        token_.mint(who, amount);
        vm.prank(who);
        token_.approve(address(escrow), amount);
    }
}
