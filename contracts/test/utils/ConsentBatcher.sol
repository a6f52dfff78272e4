// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IConsentRegistry} from "../../src/interfaces/IConsentRegistry.sol";

/// @title ConsentBatcher
/// @notice Test helper that grants many consents in one transaction, so that a benchmark can
///         fill a chain with registry events quickly. Every grant is made by this contract,
///         which is therefore the `user` of every `ConsentGranted` event it causes.
/// @dev A grant of a new scope costs about 25k gas inside the loop: keep `count` at about
///      1,000 or fewer to stay under a 30M block gas limit.
contract ConsentBatcher {
    /// @notice Grants consent on `registry` for the scopes `bytes32(start)` to
    ///         `bytes32(start + count - 1)`, each until `expiry`.
    /// @param registry The consent registry to call.
    /// @param start The first scope, as a number.
    /// @param count How many scopes to grant (one `ConsentGranted` event each).
    /// @param expiry Until when each grant holds (a unix time in the future).
    function grantMany(address registry, uint256 start, uint256 count, uint64 expiry) external {
        IConsentRegistry consent = IConsentRegistry(registry);
        for (uint256 i = 0; i < count; ++i) {
            consent.grant(bytes32(start + i), expiry);
        }
    }
}
