// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IAdEscrow
/// @notice Campaign escrow with Merkle settlement of cumulative earnings.
/// @dev Money flow: advertisers fund campaigns; the settler debits campaigns once per epoch
///      and posts one Merkle root of every payee's cumulative earnings per token; after the
///      challenge window anyone claims for a payee with a proof. Claims can only pay out what
///      activated epochs debited, and the guardian can revoke a root while it is pending.
interface IAdEscrow {
    // ---------------------------------------------------------------------------------
    // Types
    // ---------------------------------------------------------------------------------

    /// @notice One campaign's debit in a settlement.
    struct Debit {
        bytes32 campaignId;
        uint256 amount;
    }

    /// @notice The sum of one token's debits in a settlement; the payout root distributes it.
    struct TokenTotal {
        address token;
        uint256 amount;
    }

    /// @notice One claim in a batch.
    struct Claim {
        address account;
        address token;
        uint256 indexAndAmount;
        bytes32[] proof;
    }

    /// @notice A campaign as stored.
    /// @dev Laid out for settlement, which reads the first two slots (token and end, then
    ///      the budget) and never the advertiser.
    struct Campaign {
        address token;
        uint40 end;
        uint256 remaining;
        address advertiser;
    }

    // ---------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------

    /// @notice Emitted when a campaign is opened.
    event CampaignOpened(
        bytes32 indexed campaignId, address indexed advertiser, address indexed token, uint40 end
    );

    /// @notice Emitted when a campaign's budget grows; `amount` is what the escrow received.
    event CampaignFunded(
        bytes32 indexed campaignId, address indexed from, uint256 amount, uint256 remaining
    );

    /// @notice Emitted when the advertiser closes a campaign early; `end` is the new end.
    event CampaignClosed(bytes32 indexed campaignId, uint40 end);

    /// @notice Emitted when the advertiser takes back the unspent budget.
    event CampaignWithdrawn(bytes32 indexed campaignId, address indexed advertiser, uint256 amount);

    /// @notice Emitted when an epoch is settled. The root is claimable from `claimableAt`.
    event Settled(
        uint64 indexed epoch, bytes32 root, uint40 claimableAt, Debit[] debits, TokenTotal[] totals
    );

    /// @notice Emitted when the guardian revokes a pending epoch; its debits are restored.
    event SettlementRevoked(uint64 indexed epoch, bytes32 root);

    /// @notice Emitted when a payee is paid: everything up to the cumulative amount in the low
    ///         128 bits of `indexAndAmount` is now claimed by the payee whose index is in the
    ///         high 128 bits. The amount paid is the rise over the index's previous claim; the
    ///         token's own Transfer event names the account, the token and that amount.
    /// @dev Anonymous and one word on purpose, claims being the hot path: it costs 631 gas
    ///      where a named event with the account and token would cost 1,637. It is the
    ///      contract's only anonymous event, so a log of this contract without topics is a
    ///      claim. An index stands for one (account, token) for the escrow's whole life
    ///      (docs/ENCODING.md).
    event Claimed(uint256 indexAndAmount) anonymous;

    /// @notice Emitted when the challenge window changes; applies to later settlements.
    event ChallengeWindowSet(uint40 window);

    /// @notice Emitted when the guardian pauses or unpauses settlement and claims.
    event PauseSet(bool paused);

    // ---------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------

    /// @notice Thrown when an amount that must be positive is zero.
    error AdEscrowZeroAmount();

    /// @notice Thrown when an address that must be set is zero.
    error AdEscrowZeroAddress();

    /// @notice Thrown when opening a campaign under an id that is taken.
    error AdEscrowCampaignExists(bytes32 campaignId);

    /// @notice Thrown when a campaign id names no campaign.
    error AdEscrowUnknownCampaign(bytes32 campaignId);

    /// @notice Thrown when a campaign's end is not in the future.
    error AdEscrowInvalidEnd(uint40 end);

    /// @notice Thrown when someone other than the campaign's advertiser acts for it.
    error AdEscrowNotAdvertiser(bytes32 campaignId, address caller);

    /// @notice Thrown when funding or closing a campaign that has ended.
    error AdEscrowCampaignEnded(bytes32 campaignId);

    /// @notice Thrown when withdrawing before the campaign's end plus the grace period.
    error AdEscrowWithdrawTooEarly(bytes32 campaignId, uint256 availableAt);

    /// @notice Thrown when withdrawing from a campaign with nothing left.
    error AdEscrowNothingToWithdraw(bytes32 campaignId);

    /// @notice Thrown when a token transfers less than asked (fee-on-transfer tokens are
    ///         not supported).
    error AdEscrowFeeOnTransfer(address token, uint256 expected, uint256 received);

    /// @notice Thrown when a settlement names an epoch other than the next one.
    error AdEscrowWrongEpoch(uint64 expected, uint64 given);

    /// @notice Thrown when a settlement is posted while the previous root is still pending:
    ///         in its challenge window, or past it but not yet activated.
    error AdEscrowSettlementPending(uint64 pendingEpoch, uint40 claimableAt);

    /// @notice Thrown when a settlement's root is empty: zero in its high 128 bits, the part
    ///         claims check.
    error AdEscrowEmptyRoot();

    /// @notice Thrown when a settlement debits a campaign at or after its end plus the grace
    ///         period, when the budget left belongs to the advertiser again.
    error AdEscrowSettlementClosed(bytes32 campaignId, uint256 closedAt);

    /// @notice Thrown when a debit exceeds a campaign's remaining budget.
    error AdEscrowInsufficientBudget(bytes32 campaignId, uint256 remaining, uint256 debit);

    /// @notice Thrown when a settlement's per-token totals do not equal its debits, or name a
    ///         token twice.
    error AdEscrowTotalsMismatch(address token);

    /// @notice Thrown when revoking with no pending epoch, or with the wrong one.
    error AdEscrowNothingToRevoke(uint64 epoch);

    /// @notice Thrown when revoking after the challenge window: the root is final by then.
    ///         A pause stops the window's clock, and unpausing resumes it.
    error AdEscrowChallengeWindowOver(uint64 epoch, uint40 claimableAt);

    /// @notice Thrown when the debits or totals passed to activate or revoke are not the ones
    ///         settled.
    error AdEscrowCommitmentMismatch();

    /// @notice Thrown when claiming before any root is claimable.
    error AdEscrowNoRoot();

    /// @notice Thrown when activating with no pending root, or before its window has passed.
    error AdEscrowNotClaimableYet(uint40 claimableAt);

    /// @notice Thrown when a proof does not lead to the root.
    error AdEscrowInvalidProof();

    /// @notice Thrown when a claim would leave the escrow holding less of `token` than its
    ///         campaigns' budgets and the pending epoch's debits: more than activated epochs
    ///         debited would have been paid out.
    error AdEscrowExceedsSettled(address token);

    /// @notice Thrown when a settlement would make the escrow pay out in more than
    ///         `MAX_TOKENS` tokens (pausing visits every one).
    error AdEscrowTooManyTokens();

    /// @notice Thrown when settlement or claims are attempted while paused.
    error AdEscrowPaused();

    // ---------------------------------------------------------------------------------
    // Advertisers
    // ---------------------------------------------------------------------------------

    /// @notice Opens a campaign funded with `amount` of `token` from the caller, who becomes
    ///         its advertiser. Needs a prior ERC-20 approval.
    /// @param campaignId The campaign's id, chosen off chain; it must be unused.
    /// @param token The ERC-20 the budget is held and paid out in; fee-on-transfer tokens are
    ///        refused.
    /// @param amount The opening budget in `token`'s base units; positive. What the escrow
    ///        keeps of one token for all campaigns and the pending epoch stays below 2^128.
    /// @param end When the campaign ends, a unix time in the future.
    function openCampaign(bytes32 campaignId, address token, uint256 amount, uint40 end) external;

    /// @notice Same as `openCampaign`, approving through an EIP-2612 permit in the same call.
    /// @param campaignId The campaign's id, as in `openCampaign`.
    /// @param token The budget's token, as in `openCampaign`.
    /// @param amount The opening budget, as in `openCampaign`; also the permit's value.
    /// @param end When the campaign ends, as in `openCampaign`.
    /// @param deadline The permit's deadline.
    /// @param v The permit signature's recovery byte.
    /// @param r The permit signature's `r`.
    /// @param s The permit signature's `s`.
    function openCampaignWithPermit(
        bytes32 campaignId,
        address token,
        uint256 amount,
        uint40 end,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Adds `amount` to a running campaign's budget, from the caller.
    /// @param campaignId The campaign topped up; it must not have ended.
    /// @param amount What is added, in the campaign token's base units; positive. What the
    ///        escrow keeps of one token stays below 2^128, as in `openCampaign`.
    function fund(bytes32 campaignId, uint256 amount) external;

    /// @notice Ends a campaign now; the unspent budget is withdrawable after the grace period.
    /// @param campaignId The caller's campaign; it must not have ended.
    function closeCampaign(bytes32 campaignId) external;

    /// @notice Pays the unspent budget back to the advertiser, once the campaign's end plus
    ///         the grace period has passed. Works while paused; needs no operator.
    /// @param campaignId The caller's campaign.
    /// @return amount What was paid back: the whole remaining budget.
    function withdraw(bytes32 campaignId) external returns (uint256 amount);

    // ---------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------

    /// @notice Settles `epoch`: debits each campaign and posts the payout root, which
    ///         becomes claimable after the challenge window.
    /// @dev `epoch` must be the last epoch plus one. `totals` must hold, for each token, the
    ///      exact sum of the debits of that token's campaigns.
    /// @param epoch The epoch settled: the last settled epoch plus one.
    /// @param root The Merkle root of every payee's cumulative earnings per token, built on
    ///        the current root (leaves as in `PayoutProof`); nonzero. Claims compare its high
    ///        128 bits.
    /// @param debits What each campaign spent in the epoch; each amount positive, each
    ///        campaign before its end plus the grace period.
    /// @param totals For each token in the tree, the sum of its debits (zero for a token
    ///        with leaves but no debits this epoch): the root becomes the current root of
    ///        exactly these tokens, and their sums become claimable.
    function settle(
        uint64 epoch,
        bytes32 root,
        Debit[] calldata debits,
        TokenTotal[] calldata totals
    ) external;

    /// @notice Makes the pending root the current one of its tokens once its challenge
    ///         window has passed, and their debits claimable. Anyone may call with the
    ///         epoch's totals from its `Settled` event; the next settlement needs it done.
    /// @param debitsHash `keccak256(abi.encode(debits))` of the pending epoch.
    /// @param totals The pending epoch's totals, exactly as settled.
    function activate(bytes32 debitsHash, TokenTotal[] calldata totals) external;

    /// @notice Revokes the pending epoch while its challenge window is open (a pause stops
    ///         the window's clock; unpausing resumes it with the time it had left): its root is
    ///         dropped and its debits return to their campaigns. The epoch number stays used; the next settlement is `epoch + 1` and its
    ///         cumulative amounts must build on the current (unrevoked) root. Only the pending
    ///         epoch can be revoked, and no later epoch can exist while one is pending.
    /// @param epoch The pending epoch.
    /// @param debits The epoch's debits, exactly as settled (checked against its commitment).
    /// @param totals The epoch's totals, exactly as settled (checked against its commitment).
    function revoke(uint64 epoch, Debit[] calldata debits, TokenTotal[] calldata totals) external;

    // ---------------------------------------------------------------------------------
    // Claims
    // ---------------------------------------------------------------------------------

    /// @notice Pays `account` its cumulative amount of `token` minus what its index already
    ///         claimed. Anyone may call; tokens always go to `account`. Verified against the
    ///         token's current root, or the one before it (a proof built just before a
    ///         rotation still works).
    /// @param account The payee, who receives the tokens whoever calls.
    /// @param token The token claimed.
    /// @param indexAndAmount As the leaf says: the payee's index (high 128 bits), which stands
    ///        for (`account`, `token`) for good, and everything `account` has earned of
    ///        `token` up to the root's epoch (low 128 bits).
    /// @param proof The Merkle proof of the leaf (`account`, `token`, `indexAndAmount`).
    /// @return amount What was paid: the cumulative amount minus what was claimed before;
    ///         zero for a replayed or stale proof. A claim beyond the cap reverts with
    ///         `AdEscrowExceedsSettled`, or with SafeERC20's `SafeERC20FailedOperation` when it
    ///         is more than the escrow holds at all (the transfer fails first).
    function claim(address account, address token, uint256 indexAndAmount, bytes32[] calldata proof)
        external
        returns (uint256 amount);

    /// @notice Several claims in one transaction.
    /// @param claims The claims, each handled as `claim` does; one that reverts reverts all.
    /// @return amounts What each claim paid, in the order of `claims`.
    function claimMany(Claim[] calldata claims) external returns (uint256[] memory amounts);

    // ---------------------------------------------------------------------------------
    // Administration
    // ---------------------------------------------------------------------------------

    /// @notice Sets the challenge window of later settlements (admin).
    /// @param window The window in seconds; zero makes later roots current as they are
    ///        settled.
    function setChallengeWindow(uint40 window) external;

    /// @notice Stops settlement and claims, and the pending root's challenge clock (guardian).
    ///         Advertisers can still withdraw.
    function pause() external;

    /// @notice Resumes settlement and claims (guardian).
    function unpause() external;

    // ---------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------

    /// @notice A campaign; `advertiser` is zero for unknown ids.
    /// @param campaignId The campaign's id.
    /// @return The campaign as stored, all zero for an unknown id.
    function campaign(bytes32 campaignId) external view returns (Campaign memory);

    /// @notice What claims in `token` check against.
    /// @param token The token.
    /// @return root The high 128 bits of the token's current root; zero while paused or
    ///         before any root of the token is current.
    /// @return previousRoot The same of the root before it, still accepted; zero when none or
    ///         while paused.
    /// @return locked What the escrow keeps of `token` for its campaigns: every budget and
    ///         the pending epoch's debits. A claim fails if it would leave less.
    function tokenState(address token)
        external
        view
        returns (bytes16 root, bytes16 previousRoot, uint256 locked);

    /// @notice The tokens that have had a root, in the order they first did.
    /// @return The tokens; at most `MAX_TOKENS`.
    function tokens() external view returns (address[] memory);

    /// @notice The pending root and its commitment to the debits (zero when none is pending).
    /// @return root The pending root; zero when none is pending.
    /// @return commitment `keccak256(abi.encode(keccak256(abi.encode(debits)), totals))` of
    ///         the pending epoch, which `activate` and `revoke` check; zero when none is
    ///         pending.
    function pendingRoot() external view returns (bytes32 root, bytes32 commitment);

    /// @notice Epoch bookkeeping: the last settled epoch, the epoch of the current root, and,
    ///         when an epoch is pending, when it becomes claimable (zero otherwise).
    /// @return lastEpoch The last settled epoch, revoked ones included.
    /// @return currentEpoch The epoch of the current root.
    /// @return pendingClaimableAt When the pending root becomes claimable (a unix time); zero
    ///         when none is pending. Unpausing moves it on by the time spent paused when
    ///         the pause began inside the window.
    /// @return challengeWindow The challenge window of later settlements, in seconds.
    /// @return paused Whether settlement and claims are paused.
    function settlementState()
        external
        view
        returns (
            uint64 lastEpoch,
            uint64 currentEpoch,
            uint40 pendingClaimableAt,
            uint40 challengeWindow,
            bool paused
        );

    /// @notice What the payee at `index` has claimed so far.
    /// @param index The payee's index.
    /// @return The cumulative amount paid to the index's (account, token), in base units.
    function claimed(uint256 index) external view returns (uint256);

    /// @notice Time after a campaign's end during which it can still be debited; after it the
    ///         advertiser may withdraw what is left.
    /// @return The grace period in seconds.
    function gracePeriod() external view returns (uint40);

    /// @notice How many tokens the escrow can pay out in.
    /// @return The limit.
    function MAX_TOKENS() external view returns (uint256);
}
