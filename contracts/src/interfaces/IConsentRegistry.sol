// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IConsentRegistry
/// @notice Users' consent records: a user grants consent for a scope until an expiry, and
///         may revoke it. Only pseudonymous data is kept: the user's address, a scope hash
///         and a timestamp.
/// @dev A scope is `keccak256(bytes(purpose))` for a purpose that holds for every advertiser,
///      or `keccak256(abi.encode(keccak256(bytes(purpose)), advertiser))` for one advertiser.
interface IConsentRegistry {
    /// @notice Emitted when a user grants (or extends) consent for a scope.
    event ConsentGranted(address indexed user, bytes32 indexed scope, uint64 expiry);

    /// @notice Emitted when a user revokes consent for a scope.
    event ConsentRevoked(address indexed user, bytes32 indexed scope);

    /// @notice Thrown when an expiry is not in the future.
    error ConsentInvalidExpiry(uint64 expiry);

    /// @notice Thrown when a signed message is used after its deadline.
    error ConsentExpiredSignature(uint256 deadline);

    /// @notice Thrown when a signature was not made by the user it names.
    error ConsentInvalidSigner(address signer, address user);

    /// @notice Grants consent for `scope` until `expiry` (a unix time).
    /// @param scope The scope consented to (see the contract's `@dev` for how one is made).
    /// @param expiry Until when, a unix time in the future; replaces the caller's earlier
    ///        expiry for `scope`, later or earlier.
    function grant(bytes32 scope, uint64 expiry) external;

    /// @notice Revokes consent for `scope`.
    /// @param scope The scope whose consent the caller withdraws; its expiry becomes zero.
    function revoke(bytes32 scope) external;

    /// @notice Grants for `user`, who signed an EIP-712 `ConsentGrant`; anyone may submit.
    /// @param user The user who signed, whose consent is recorded.
    /// @param scope The scope consented to, as in `grant`.
    /// @param expiry Until when, as in `grant`.
    /// @param nonce The user's current nonce (`nonces(user)`); the call uses it up.
    /// @param deadline The last unix time at which the signature is accepted.
    /// @param signature The user's 65-byte ECDSA signature (r, s, v) of the `ConsentGrant`.
    function grantBySig(
        address user,
        bytes32 scope,
        uint64 expiry,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Revokes for `user`, who signed an EIP-712 `ConsentRevocation`; anyone may submit.
    /// @param user The user who signed, whose consent is withdrawn.
    /// @param scope The scope whose consent is withdrawn, as in `revoke`.
    /// @param nonce The user's current nonce (`nonces(user)`); the call uses it up.
    /// @param deadline The last unix time at which the signature is accepted.
    /// @param signature The user's 65-byte ECDSA signature (r, s, v) of the
    ///        `ConsentRevocation`.
    function revokeBySig(
        address user,
        bytes32 scope,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Whether `user` consents to `scope` now.
    /// @param user The user asked about.
    /// @param scope The scope asked about.
    /// @return Whether `user`'s consent to `scope` expires after the current block's time.
    function hasConsent(address user, bytes32 scope) external view returns (bool);

    /// @notice Until when `user` consents to `scope`; zero if never or revoked.
    /// @param user The user asked about.
    /// @param scope The scope asked about.
    /// @return The expiry as a unix time, which may be past; zero if never granted or revoked.
    function consentExpiry(address user, bytes32 scope) external view returns (uint64);
}
