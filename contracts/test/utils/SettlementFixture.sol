// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAdEscrow} from "../../src/interfaces/IAdEscrow.sol";
import {AdEscrowTestBase} from "./AdEscrowTestBase.sol";

/// @notice Three open campaigns over two tokens, and the guardian's revoke, for the
///         settlement and challenge-window suites.
abstract contract SettlementFixture is AdEscrowTestBase {
    bytes32 internal constant ROOT_1 = keccak256("root 1");
    bytes32 internal constant ROOT_2 = keccak256("root 2");
    uint40 internal constant WINDOW = 1 days;

    function setUp() public override {
        super.setUp();
        _open(advertiser, CAMPAIGN_A, usd, BUDGET);
        _open(otherAdvertiser, CAMPAIGN_B, eur, BUDGET);
        _open(advertiser, CAMPAIGN_C, usd, BUDGET);
    }

    function _revoke(
        uint64 epoch,
        IAdEscrow.Debit[] memory debits,
        IAdEscrow.TokenTotal[] memory totals
    ) internal {
        vm.prank(guardian);
        escrow.revoke(epoch, debits, totals);
    }
}
