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
    function grant(bytes32 scope, uint64 expiry) external;

    /// @notice Revokes consent for `scope`.
    function revoke(bytes32 scope) external;

    /// @notice Grants for `user`, who signed an EIP-712 `ConsentGrant`; anyone may submit.
    function grantBySig(
        address user,
        bytes32 scope,
        uint64 expiry,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Revokes for `user`, who signed an EIP-712 `ConsentRevocation`; anyone may submit.
    function revokeBySig(
        address user,
        bytes32 scope,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Whether `user` consents to `scope` now.
    function hasConsent(address user, bytes32 scope) external view returns (bool);

    /// @notice Until when `user` consents to `scope`; zero if never or revoked.
    function consentExpiry(address user, bytes32 scope) external view returns (uint64);
}
