// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";

/// @title ConsentRegistry
/// @notice On-chain consent records, granted and revoked by users directly or through a
///         relayer with an EIP-712 signature (chain id and this contract in the domain,
///         a nonce per user, a deadline). OpenZeppelin's ECDSA refuses high-s signatures and
///         the zero signer.
contract ConsentRegistry is IConsentRegistry, EIP712, Nonces {
    /// @notice EIP-712 type of a signed grant.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "ConsentGrant(address user,bytes32 scope,uint64 expiry,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type of a signed revocation.
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("ConsentRevocation(address user,bytes32 scope,uint256 nonce,uint256 deadline)");

    mapping(address user => mapping(bytes32 scope => uint64 expiry)) private _expiry;

    constructor() EIP712("adescrow consent", "1") {}

    /// @inheritdoc IConsentRegistry
    function grant(bytes32 scope, uint64 expiry) external {
        _grant(msg.sender, scope, expiry);
    }

    /// @inheritdoc IConsentRegistry
    function revoke(bytes32 scope) external {
        _revoke(msg.sender, scope);
    }

    /// @inheritdoc IConsentRegistry
    function grantBySig(
        address user,
        bytes32 scope,
        uint64 expiry,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSignature(
            user,
            keccak256(abi.encode(GRANT_TYPEHASH, user, scope, expiry, nonce, deadline)),
            nonce,
            deadline,
            signature
        );
        _grant(user, scope, expiry);
    }

    /// @inheritdoc IConsentRegistry
    function revokeBySig(
        address user,
        bytes32 scope,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSignature(
            user,
            keccak256(abi.encode(REVOCATION_TYPEHASH, user, scope, nonce, deadline)),
            nonce,
            deadline,
            signature
        );
        _revoke(user, scope);
    }

    /// @inheritdoc IConsentRegistry
    function hasConsent(address user, bytes32 scope) external view returns (bool) {
        return _expiry[user][scope] > block.timestamp;
    }

    /// @inheritdoc IConsentRegistry
    function consentExpiry(address user, bytes32 scope) external view returns (uint64) {
        return _expiry[user][scope];
    }

    /// @notice The EIP-712 domain separator signatures are made against.
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _grant(address user, bytes32 scope, uint64 expiry) private {
        if (expiry <= block.timestamp) revert ConsentInvalidExpiry(expiry);
        _expiry[user][scope] = expiry;
        emit ConsentGranted(user, scope, expiry);
    }

    function _revoke(address user, bytes32 scope) private {
        delete _expiry[user][scope];
        emit ConsentRevoked(user, scope);
    }

    /// @dev Deadline first: an expired message should say so even if its nonce is stale.
    function _checkSignature(
        address user,
        bytes32 structHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert ConsentExpiredSignature(deadline);
        address signer = ECDSA.recoverCalldata(_hashTypedDataV4(structHash), signature);
        if (signer != user) revert ConsentInvalidSigner(signer, user);
        _useCheckedNonce(user, nonce);
    }
}
