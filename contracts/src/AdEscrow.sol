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
///      but it can only debit what campaigns hold, claims can only pay out what activated
///      epochs debited, and each root waits out a challenge window in which the guardian can
///      revoke it. The guardian can pause and revoke but never move funds. Advertisers
///      withdraw their unspent budget after their campaign's end plus a grace period on their
///      own, paused or not.
///
///      The cap. The escrow keeps, per token, `locked`: every campaign's budget plus the
///      pending epoch's debits. A claim fails unless the escrow still holds at least `locked`
///      after paying, so claims can only ever spend what activated epochs debited, whatever a
///      root says. Checking the balance (a warm read in the token) replaces keeping a claimed
///      total, which cost every claim a storage write.
///
///      Gas. A claim reads two slots of its own: the token's slot, which packs the high 128
///      bits of its current root with `locked`, and the slot holding the claimed amounts of
///      the payee's index and its neighbour (two per slot, so half of all first claims write
///      a slot already in use). Both live at fixed addresses rather than behind a mapping's
///      hash. Pause is folded into the token slots: while paused their roots are parked in
///      `_parkedRoots` and the slots hold zero roots, so claims need no pause flag.
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

    /// @inheritdoc IAdEscrow
    uint256 public constant MAX_TOKENS = 64;

    /// @dev Token `t`'s slot is `_TOKEN_SLOTS | t`: the high 128 bits of its current root
    ///      (high half) and its `locked` amount (low half). The prefix is the high 96 bits of
    ///      keccak256("adescrow.tokens"), so these slots cannot meet Solidity's own.
    uint256 private constant _TOKEN_SLOTS =
        0xb9f10ff9d069d01f445f4e4a0000000000000000000000000000000000000000;
    /// @dev Index `i`'s claimed amount is in slot `_CLAIMED_SLOTS + i / 2`, the low half for
    ///      even `i` and the high half for odd. The base is the high 128 bits of
    ///      keccak256("adescrow.claimed"); indexes are below 2^128, so the slots stay apart
    ///      from the token slots and from Solidity's own.
    uint256 private constant _CLAIMED_SLOTS =
        0xb940af93da2c9cfe19c1c40e72b1ac5000000000000000000000000000000000;
    uint256 private constant _LOW_HALF = 0xffffffffffffffffffffffffffffffff;

    /// @inheritdoc IAdEscrow
    uint40 public immutable gracePeriod;

    mapping(bytes32 campaignId => Campaign) private _campaigns;
    /// @dev Each token's root before its current one (high 128 bits), for proofs built just
    ///      before a rotation; read by claims only when the current root does not match.
    mapping(address token => bytes16) private _previousRoots;
    /// @dev Where each token's current root waits while paused.
    mapping(address token => bytes16) private _parkedRoots;
    /// @dev Every token that has had a root; pause and unpause visit them all.
    address[] private _tokens;

    SettlementState private _state;
    bytes32 private _pendingRoot;
    /// @dev keccak256(abi.encode(keccak256(abi.encode(debits)), totals)) of the pending epoch,
    ///      checked by `activate` and `revoke`.
    bytes32 private _pendingCommitment;

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
        _unlock(c.token, amount);
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
        // Claims compare the high half, and a zero high half reads as "no root".
        if (uint256(root) >> 128 == 0) revert AdEscrowEmptyRoot();
        // One pending root at a time; once its window has passed, `activate` (anyone) makes it
        // current. Keeping promotion out of `settle` keeps the settler's gas flat.
        if (s.pendingClaimableAt != 0) {
            revert AdEscrowSettlementPending(s.lastEpoch, s.pendingClaimableAt);
        }

        _debit(debits, totals);
        s.lastEpoch = epoch;
        uint40 claimableAt = uint40(block.timestamp) + s.challengeWindow;
        if (s.challengeWindow == 0) {
            _rotate(root, totals);
            s.currentEpoch = epoch;
        } else {
            // `activate` must not fail on the token limit: once its window was over, nothing
            // could make such a root current or revoke it, and no epoch could follow.
            _checkTokenRoom(totals);
            _pendingRoot = root;
            _pendingCommitment = _commitment(keccak256(abi.encode(debits)), totals);
            s.pendingClaimableAt = claimableAt;
        }
        _state = s;
        emit Settled(epoch, root, claimableAt, debits, totals);
    }

    /// @inheritdoc IAdEscrow
    function activate(bytes32 debitsHash, TokenTotal[] calldata totals) external {
        SettlementState memory s = _state;
        if (s.paused) revert AdEscrowPaused();
        if (s.pendingClaimableAt == 0 || block.timestamp < s.pendingClaimableAt) {
            revert AdEscrowNotClaimableYet(s.pendingClaimableAt);
        }
        if (_commitment(debitsHash, totals) != _pendingCommitment) {
            revert AdEscrowCommitmentMismatch();
        }
        _rotate(_pendingRoot, totals);
        s.currentEpoch = s.lastEpoch;
        s.pendingClaimableAt = 0;
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
        if (_commitment(keccak256(abi.encode(debits)), totals) != _pendingCommitment) {
            revert AdEscrowCommitmentMismatch();
        }

        // The debits never left `locked` (only activation releases them), so restoring the
        // budgets is all there is to undo.
        for (uint256 i; i < debits.length; ++i) {
            // Cannot overflow: the restored amount never left the escrow's balance.
            _campaigns[debits[i].campaignId].remaining += debits[i].amount;
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
    function claim(address account, address token, uint256 indexAndAmount, bytes32[] calldata proof)
        public
        returns (uint256 amount)
    {
        uint256 tokenState_;
        assembly ("memory-safe") {
            tokenState_ := sload(or(_TOKEN_SLOTS, token))
        }
        uint256 root = tokenState_ >> 128;
        if (root == 0) {
            if (_state.paused) revert AdEscrowPaused();
            revert AdEscrowNoRoot();
        }
        uint256 reached = uint256(
            PayoutProof.root(proof, PayoutProof.leaf(account, token, indexAndAmount))
        ) >> 128;
        if (reached != root) {
            // A proof built just before a rotation is still good for what it covers.
            uint256 previous = uint128(_previousRoots[token]);
            if (previous == 0 || reached != previous) revert AdEscrowInvalidProof();
        }

        assembly ("memory-safe") {
            let index := shr(128, indexAndAmount)
            let cumulative := and(indexAndAmount, _LOW_HALF)
            let slot := add(_CLAIMED_SLOTS, shr(1, index))
            let shift := shl(7, and(index, 1))
            let pair := sload(slot)
            let already := and(shr(shift, pair), _LOW_HALF)
            // A replayed or stale proof pays nothing.
            if gt(cumulative, already) {
                amount := sub(cumulative, already)
                sstore(slot, or(and(pair, not(shl(shift, _LOW_HALF))), shl(shift, cumulative)))
            }
        }
        if (amount == 0) return 0;
        emit Claimed(indexAndAmount);
        _pay(token, account, amount, tokenState_ & _LOW_HALF);
    }

    /// @inheritdoc IAdEscrow
    function claimMany(Claim[] calldata claims) external returns (uint256[] memory amounts) {
        amounts = new uint256[](claims.length);
        for (uint256 i; i < claims.length; ++i) {
            Claim calldata c = claims[i];
            amounts[i] = claim(c.account, c.token, c.indexAndAmount, c.proof);
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
        // At most MAX_TOKENS slots, so the guardian's pause always fits in a block.
        for (uint256 i; i < _tokens.length; ++i) {
            address token = _tokens[i];
            uint256 slot = _TOKEN_SLOTS | uint160(token);
            uint256 packed;
            assembly ("memory-safe") {
                packed := sload(slot)
                sstore(slot, and(packed, _LOW_HALF))
            }
            _parkedRoots[token] = bytes16(uint128(packed >> 128));
        }
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
        for (uint256 i; i < _tokens.length; ++i) {
            address token = _tokens[i];
            uint256 slot = _TOKEN_SLOTS | uint160(token);
            uint256 parked = uint128(_parkedRoots[token]);
            assembly ("memory-safe") {
                sstore(slot, or(shl(128, parked), and(sload(slot), _LOW_HALF)))
            }
            delete _parkedRoots[token];
        }
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
    function tokenState(address token)
        external
        view
        returns (bytes16 root, bytes16 previousRoot, uint256 locked)
    {
        uint256 packed = _tokenSlot(token);
        // Claims cannot use the previous root while paused either: the current one is parked.
        previousRoot = _state.paused ? bytes16(0) : _previousRoots[token];
        return (bytes16(uint128(packed >> 128)), previousRoot, packed & _LOW_HALF);
    }

    /// @inheritdoc IAdEscrow
    function tokens() external view returns (address[] memory) {
        return _tokens;
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
    function claimed(uint256 index) external view returns (uint256 amount) {
        assembly ("memory-safe") {
            amount := and(
                shr(shl(7, and(index, 1)), sload(add(_CLAIMED_SLOTS, shr(1, index)))),
                _LOW_HALF
            )
        }
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
        uint256 packed = _tokenSlot(address(token));
        // Reverts past 2^128 - 1 locked: the low half's limit.
        uint256 locked = (packed & _LOW_HALF) + amount;
        _setTokenSlot(address(token), (packed & ~_LOW_HALF) | uint256(locked.toUint128()));
        emit CampaignFunded(campaignId, msg.sender, amount, remaining);
    }

    /// @dev Takes `amount` of `token` out of `locked`: a withdrawal, or debits that a root
    ///      activates.
    function _unlock(address token, uint256 amount) private {
        uint256 packed = _tokenSlot(token);
        // Checked: `locked` covers every budget and the pending debits, so this cannot go
        // below zero; were it to, reverting is the safe failure.
        uint256 locked = (packed & _LOW_HALF) - amount;
        _setTokenSlot(token, (packed & ~_LOW_HALF) | locked);
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
            address token = totals[j].token;
            if (sums[j] != totals[j].amount) revert AdEscrowTotalsMismatch(token);
            // Named twice, a token would rotate twice and lose its previous root.
            for (uint256 k; k < j; ++k) {
                if (totals[k].token == token) revert AdEscrowTotalsMismatch(token);
            }
        }
    }

    /// @dev `root` becomes the current root of each token in `totals`, whose debits leave
    ///      `locked` and become claimable; each token's current root becomes its previous.
    function _rotate(bytes32 root, TokenTotal[] calldata totals) private {
        uint256 top = uint256(root) >> 128;
        for (uint256 j; j < totals.length; ++j) {
            TokenTotal calldata t = totals[j];
            uint256 packed = _tokenSlot(t.token);
            uint256 current = packed >> 128;
            if (current == 0) {
                // Roots are never zero outside a pause, and rotation never runs paused: the
                // token has its first root.
                if (_tokens.length == MAX_TOKENS) revert AdEscrowTooManyTokens();
                _tokens.push(t.token);
            } else {
                _previousRoots[t.token] = bytes16(uint128(current));
            }
            uint256 locked = (packed & _LOW_HALF) - t.amount;
            _setTokenSlot(t.token, (top << 128) | locked);
        }
    }

    /// @dev Reverts unless the tokens in `totals` that have no root yet fit in `MAX_TOKENS`
    ///      next to those listed, as `_rotate` will require. Nothing lists a token while a root
    ///      is pending, so what passes here passes at activation; `_debit` has already refused
    ///      a token named twice.
    function _checkTokenRoom(TokenTotal[] calldata totals) private view {
        uint256 count = _tokens.length;
        // The usual case, a few tokens: no slot to read.
        if (count + totals.length <= MAX_TOKENS) return;
        for (uint256 j; j < totals.length; ++j) {
            if (_tokenSlot(totals[j].token) >> 128 == 0 && ++count > MAX_TOKENS) {
                revert AdEscrowTooManyTokens();
            }
        }
    }

    /// @dev Transfers `amount` of `token` to `account` as SafeERC20's `safeTransfer` would,
    ///      then enforces the cap: the escrow must still hold `locked`. In assembly because it
    ///      is most of a claim's own cost: the token's balance slot is warm from the transfer,
    ///      so the check costs a few hundred gas where a claimed total would cost a write.
    function _pay(address token, address account, uint256 amount, uint256 locked) private {
        bool transferred;
        bool covered;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            // transfer(account, amount)
            mstore(ptr, 0xa9059cbb00000000000000000000000000000000000000000000000000000000)
            mstore(add(ptr, 0x04), account)
            mstore(add(ptr, 0x24), amount)
            let success := call(gas(), token, 0, ptr, 0x44, 0x00, 0x20)
            // Tokens that return something must return true; those that return nothing are
            // accepted when they are contracts (checked only then: it costs a warm read).
            switch returndatasize()
            case 0 { transferred := and(success, gt(extcodesize(token), 0)) }
            default {
                transferred := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1)))
            }
            // balanceOf(this)
            mstore(ptr, 0x70a0823100000000000000000000000000000000000000000000000000000000)
            mstore(add(ptr, 0x04), address())
            success := staticcall(gas(), token, ptr, 0x24, 0x00, 0x20)
            covered := and(
                and(success, gt(returndatasize(), 0x1f)),
                iszero(lt(mload(0x00), locked))
            )
        }
        if (!transferred) revert SafeERC20.SafeERC20FailedOperation(token);
        if (!covered) revert AdEscrowExceedsSettled(token);
    }

    /// @dev What `activate` and `revoke` check the pending epoch's debits and totals against.
    function _commitment(bytes32 debitsHash, TokenTotal[] calldata totals)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(debitsHash, totals));
    }

    function _tokenSlot(address token) private view returns (uint256 packed) {
        assembly ("memory-safe") {
            packed := sload(or(_TOKEN_SLOTS, token))
        }
    }

    function _setTokenSlot(address token, uint256 packed) private {
        assembly ("memory-safe") {
            sstore(or(_TOKEN_SLOTS, token), packed)
        }
    }
}
