// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAdEscrow} from "./interfaces/IAdEscrow.sol";
import {PayoutProof} from "./libraries/PayoutProof.sol";

/// @title AdEscrow
/// @notice Holds advertisers' campaign budgets and pays what settlement says they spent.
/// @dev Trust model. The settler (the relayer's key) decides how spent budget is divided,
///      but it can only debit what campaigns hold, a root can only pay out what its epoch
///      debited, and each root waits out a challenge window in which the guardian can revoke
///      it. The guardian can pause and revoke but never move funds. Advertisers withdraw
///      their unspent budget after their campaign's end plus a grace period on their own,
///      paused or not.
///
///      Gas. The claim path reads three slots: the current root, the token's totals and the
///      account's claimed amount. Pause is folded into the root slot for that reason: while
///      paused the current root is parked in `_parkedRoot` and the slot holds zero.
contract AdEscrow is IAdEscrow, AccessControl {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice May post settlements.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice May pause, unpause and revoke pending settlements.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @dev Epoch bookkeeping, one slot.
    struct SettlementState {
        uint64 lastEpoch;
        uint64 currentEpoch;
        uint40 pendingClaimableAt;
        uint40 challengeWindow;
        bool paused;
        /// @dev When the current pause began; the challenge clock stands still from then.
        uint40 pausedAt;
    }

    /// @dev Per-token totals, one slot: claims read and write both.
    struct TokenTotals {
        uint128 settled;
        uint128 claimed;
    }

    /// @inheritdoc IAdEscrow
    uint40 public immutable gracePeriod;

    mapping(bytes32 campaignId => Campaign) private _campaigns;
    mapping(address token => TokenTotals) private _totals;
    mapping(address account => mapping(address token => uint256)) private _claimed;

    SettlementState private _state;
    bytes32 private _currentRoot;
    bytes32 private _previousRoot;
    bytes32 private _pendingRoot;
    /// @dev keccak256(abi.encode(debits, totals)) of the pending epoch, checked by `revoke`.
    bytes32 private _pendingCommitment;
    /// @dev Where the current root waits while paused.
    bytes32 private _parkedRoot;

    constructor(address admin, uint40 gracePeriod_, uint40 challengeWindow_) {
        if (admin == address(0)) revert AdEscrowZeroAddress();
        gracePeriod = gracePeriod_;
        _state.challengeWindow = challengeWindow_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------
    // Advertisers
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IAdEscrow
    function openCampaign(bytes32 campaignId, address token, uint256 amount, uint40 end) public {
        if (token == address(0)) revert AdEscrowZeroAddress();
        if (amount == 0) revert AdEscrowZeroAmount();
        if (end <= block.timestamp) revert AdEscrowInvalidEnd(end);
        Campaign storage c = _campaigns[campaignId];
        if (c.token != address(0)) revert AdEscrowCampaignExists(campaignId);

        c.token = token;
        c.end = end;
        c.advertiser = msg.sender;
        emit CampaignOpened(campaignId, msg.sender, token, end);
        _pull(campaignId, c, amount);
    }

    /// @inheritdoc IAdEscrow
    function openCampaignWithPermit(
        bytes32 campaignId,
        address token,
        uint256 amount,
        uint40 end,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        // A front-runner may have used the permit already; the allowance then suffices and
        // transferFrom below decides.
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
            catch {}
        openCampaign(campaignId, token, amount, end);
    }

    /// @inheritdoc IAdEscrow
    function fund(bytes32 campaignId, uint256 amount) external {
        if (amount == 0) revert AdEscrowZeroAmount();
        Campaign storage c = _campaigns[campaignId];
        if (c.token == address(0)) revert AdEscrowUnknownCampaign(campaignId);
        if (c.end <= block.timestamp) revert AdEscrowCampaignEnded(campaignId);
        _pull(campaignId, c, amount);
    }

    /// @inheritdoc IAdEscrow
    function closeCampaign(bytes32 campaignId) external {
        Campaign storage c = _advertisersCampaign(campaignId);
        if (c.end <= block.timestamp) revert AdEscrowCampaignEnded(campaignId);
        uint40 end = uint40(block.timestamp);
        c.end = end;
        emit CampaignClosed(campaignId, end);
    }

    /// @inheritdoc IAdEscrow
    function withdraw(bytes32 campaignId) external returns (uint256 amount) {
        Campaign storage c = _advertisersCampaign(campaignId);
        uint256 availableAt = uint256(c.end) + gracePeriod;
        if (block.timestamp < availableAt) {
            revert AdEscrowWithdrawTooEarly(campaignId, availableAt);
        }
        amount = c.remaining;
        if (amount == 0) revert AdEscrowNothingToWithdraw(campaignId);

        c.remaining = 0;
        emit CampaignWithdrawn(campaignId, msg.sender, amount);
        IERC20(c.token).safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IAdEscrow
    function settle(
        uint64 epoch,
        bytes32 root,
        Debit[] calldata debits,
        TokenTotal[] calldata totals
    ) external onlyRole(SETTLER_ROLE) {
        SettlementState memory s = _state;
        if (s.paused) revert AdEscrowPaused();
        if (epoch != s.lastEpoch + 1) revert AdEscrowWrongEpoch(s.lastEpoch + 1, epoch);
        if (root == bytes32(0)) revert AdEscrowEmptyRoot();
        // One pending root at a time; once its window has passed, `activate` (anyone) makes it
        // current. Keeping promotion out of `settle` keeps the settler's gas flat.
        if (s.pendingClaimableAt != 0) {
            revert AdEscrowSettlementPending(s.lastEpoch, s.pendingClaimableAt);
        }

        _debit(debits, totals);
        s.lastEpoch = epoch;
        uint40 claimableAt = uint40(block.timestamp) + s.challengeWindow;
        if (s.challengeWindow == 0) {
            _previousRoot = _currentRoot;
            _currentRoot = root;
            s.currentEpoch = epoch;
        } else {
            _pendingRoot = root;
            _pendingCommitment = keccak256(abi.encode(debits, totals));
            s.pendingClaimableAt = claimableAt;
        }
        _state = s;
        emit Settled(epoch, root, claimableAt, debits, totals);
    }

    /// @inheritdoc IAdEscrow
    function activate() external {
        SettlementState memory s = _state;
        if (s.paused) revert AdEscrowPaused();
        if (s.pendingClaimableAt == 0 || block.timestamp < s.pendingClaimableAt) {
            revert AdEscrowNotClaimableYet(s.pendingClaimableAt);
        }
        _promotePending(s);
        _state = s;
    }

    /// @inheritdoc IAdEscrow
    function revoke(uint64 epoch, Debit[] calldata debits, TokenTotal[] calldata totals)
        external
        onlyRole(GUARDIAN_ROLE)
    {
        SettlementState memory s = _state;
        if (s.pendingClaimableAt == 0 || epoch != s.lastEpoch) {
            revert AdEscrowNothingToRevoke(epoch);
        }
        // A pause stops the clock: the window is judged at the moment the pause began.
        uint256 now_ = s.paused ? s.pausedAt : block.timestamp;
        if (now_ >= s.pendingClaimableAt) {
            revert AdEscrowChallengeWindowOver(epoch, s.pendingClaimableAt);
        }
        if (keccak256(abi.encode(debits, totals)) != _pendingCommitment) {
            revert AdEscrowCommitmentMismatch();
        }

        for (uint256 i; i < debits.length; ++i) {
            // Cannot overflow: the restored amount never left the escrow's balance.
            _campaigns[debits[i].campaignId].remaining += debits[i].amount;
        }
        for (uint256 i; i < totals.length; ++i) {
            _totals[totals[i].token].settled -= totals[i].amount.toUint128();
        }
        bytes32 root = _pendingRoot;
        s.pendingClaimableAt = 0;
        _state = s;
        _pendingRoot = bytes32(0);
        _pendingCommitment = bytes32(0);
        emit SettlementRevoked(epoch, root);
    }

    // ---------------------------------------------------------------------------------
    // Claims
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IAdEscrow
    function claim(
        address account,
        address token,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) public returns (uint256 amount) {
        bytes32 root = _currentRoot;
        if (root == bytes32(0)) {
            if (_state.paused) revert AdEscrowPaused();
            revert AdEscrowNoRoot();
        }
        bytes32 leaf = PayoutProof.leaf(account, token, cumulativeAmount);
        if (!PayoutProof.verify(proof, root, leaf)) {
            // A proof built just before a rotation is still good for what it covers.
            bytes32 previous = _previousRoot;
            if (previous == bytes32(0) || !PayoutProof.verify(proof, previous, leaf)) {
                revert AdEscrowInvalidProof();
            }
        }

        uint256 claimedSlot = _claimedSlot(account, token);
        uint256 already;
        assembly ("memory-safe") {
            already := sload(claimedSlot)
        }
        // A replayed or stale proof pays nothing.
        if (cumulativeAmount <= already) return 0;
        unchecked {
            // Cannot underflow: checked just above.
            amount = cumulativeAmount - already;
        }
        // One read and one write of the token's packed totals (settled low, claimed high).
        TokenTotals storage totals = _totals[token];
        uint256 packed;
        assembly ("memory-safe") {
            packed := sload(totals.slot)
        }
        // casting to 'uint128' is the intended split: settled is the low half
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 settled = uint128(packed);
        uint256 claimedTotal = (packed >> 128) + amount;
        if (claimedTotal > settled) revert AdEscrowExceedsSettled(token);

        assembly ("memory-safe") {
            sstore(claimedSlot, cumulativeAmount)
            // claimedTotal <= settled < 2^128, so it fits the high half.
            sstore(totals.slot, or(settled, shl(128, claimedTotal)))
        }
        emit Claimed(account, token, cumulativeAmount);
        IERC20(token).safeTransfer(account, amount);
    }

    /// @inheritdoc IAdEscrow
    function claimMany(Claim[] calldata claims) external returns (uint256[] memory amounts) {
        amounts = new uint256[](claims.length);
        for (uint256 i; i < claims.length; ++i) {
            Claim calldata c = claims[i];
            amounts[i] = claim(c.account, c.token, c.cumulativeAmount, c.proof);
        }
    }

    // ---------------------------------------------------------------------------------
    // Administration
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IAdEscrow
    function setChallengeWindow(uint40 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _state.challengeWindow = window;
        emit ChallengeWindowSet(window);
    }

    /// @inheritdoc IAdEscrow
    function pause() external onlyRole(GUARDIAN_ROLE) {
        if (_state.paused) return;
        _state.paused = true;
        _state.pausedAt = uint40(block.timestamp);
        _parkedRoot = _currentRoot;
        _currentRoot = bytes32(0);
        emit PauseSet(true);
    }

    /// @inheritdoc IAdEscrow
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        SettlementState memory s = _state;
        if (!s.paused) return;
        // The clock resumes where it stopped: a pending root keeps the window time it had left.
        if (s.pendingClaimableAt > s.pausedAt) {
            s.pendingClaimableAt += uint40(block.timestamp) - s.pausedAt;
        }
        s.paused = false;
        s.pausedAt = 0;
        _state = s;
        _currentRoot = _parkedRoot;
        _parkedRoot = bytes32(0);
        emit PauseSet(false);
    }

    // ---------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------

    /// @inheritdoc IAdEscrow
    function campaign(bytes32 campaignId) external view returns (Campaign memory) {
        return _campaigns[campaignId];
    }

    /// @inheritdoc IAdEscrow
    function claimableRoots() external view returns (bytes32 current, bytes32 previous) {
        return (_currentRoot, _state.paused ? bytes32(0) : _previousRoot);
    }

    /// @inheritdoc IAdEscrow
    function pendingRoot() external view returns (bytes32 root, bytes32 commitment) {
        // The slots keep the last pending values after promotion; only a pending epoch counts.
        if (_state.pendingClaimableAt == 0) return (bytes32(0), bytes32(0));
        return (_pendingRoot, _pendingCommitment);
    }

    /// @inheritdoc IAdEscrow
    function settlementState()
        external
        view
        returns (
            uint64 lastEpoch,
            uint64 currentEpoch,
            uint40 pendingClaimableAt,
            uint40 challengeWindow,
            bool paused
        )
    {
        SettlementState memory s = _state;
        return (s.lastEpoch, s.currentEpoch, s.pendingClaimableAt, s.challengeWindow, s.paused);
    }

    /// @inheritdoc IAdEscrow
    function claimed(address account, address token) external view returns (uint256) {
        return _claimed[account][token];
    }

    /// @inheritdoc IAdEscrow
    function tokenTotals(address token)
        external
        view
        returns (uint256 settled, uint256 claimedTotal)
    {
        TokenTotals memory t = _totals[token];
        return (t.settled, t.claimed);
    }

    // ---------------------------------------------------------------------------------
    // Internal
    // ---------------------------------------------------------------------------------

    function _advertisersCampaign(bytes32 campaignId) private view returns (Campaign storage c) {
        c = _campaigns[campaignId];
        if (c.token == address(0)) revert AdEscrowUnknownCampaign(campaignId);
        if (c.advertiser != msg.sender) revert AdEscrowNotAdvertiser(campaignId, msg.sender);
    }

    /// @dev Takes `amount` from the caller into `c`'s budget. The balance check rejects
    ///      fee-on-transfer tokens, which would leave budgets larger than the escrow's holdings.
    function _pull(bytes32 campaignId, Campaign storage c, uint256 amount) private {
        IERC20 token = IERC20(c.token);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert AdEscrowFeeOnTransfer(address(token), amount, received);

        // Credited after the transfer: a budget only counts tokens the balance check saw arrive.
        uint256 remaining = c.remaining + amount;
        c.remaining = remaining;
        emit CampaignFunded(campaignId, msg.sender, amount, remaining);
    }

    /// @dev Debits each campaign and checks that `totals` are exactly the per-token sums.
    function _debit(Debit[] calldata debits, TokenTotal[] calldata totals) private {
        uint256[] memory sums = new uint256[](totals.length);
        for (uint256 i; i < debits.length; ++i) {
            Debit calldata d = debits[i];
            if (d.amount == 0) revert AdEscrowZeroAmount();
            Campaign storage c = _campaigns[d.campaignId];
            (address token, uint256 end) = (c.token, c.end);
            if (token == address(0)) revert AdEscrowUnknownCampaign(d.campaignId);
            // At end + grace the advertiser may withdraw; settlement stops just before.
            if (block.timestamp >= end + gracePeriod) {
                revert AdEscrowSettlementClosed(d.campaignId, end + gracePeriod);
            }
            uint256 remaining = c.remaining;
            if (d.amount > remaining) {
                revert AdEscrowInsufficientBudget(d.campaignId, remaining, d.amount);
            }
            unchecked {
                // Cannot underflow: checked just above.
                c.remaining = remaining - d.amount;
            }
            uint256 j;
            while (j < totals.length && totals[j].token != token) ++j;
            if (j == totals.length) revert AdEscrowTotalsMismatch(token);
            sums[j] += d.amount;
        }
        for (uint256 j; j < totals.length; ++j) {
            TokenTotal calldata t = totals[j];
            if (sums[j] != t.amount) revert AdEscrowTotalsMismatch(t.token);
            _totals[t.token].settled += t.amount.toUint128();
        }
    }

    /// @dev The storage slot of `_claimed[account][token]`, computed once for the claim's read
    ///      and write (Solidity would hash the nested keys twice).
    function _claimedSlot(address account, address token) private pure returns (uint256 slot) {
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, _claimed.slot)
            mstore(0x20, keccak256(0x00, 0x40))
            mstore(0x00, token)
            slot := keccak256(0x00, 0x40)
        }
    }

    /// @dev The pending root becomes current; the current one stays usable as previous.
    function _promotePending(SettlementState memory s) private {
        _previousRoot = _currentRoot;
        _currentRoot = _pendingRoot;
        s.currentEpoch = s.lastEpoch;
        s.pendingClaimableAt = 0;
    }
}
