// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {TestToken} from "./mocks/TestToken.sol";

contract TestTokenTest is Test {
    TestToken internal token;

    function setUp() public {
        token = new TestToken("Test USD", "tUSD");
    }

    function test_decimals_isSix() public view {
        assertEq(token.decimals(), 6, "decimals");
    }

    function testFuzz_mint_creditsRecipient(address to, uint128 amount) public {
        vm.assume(to != address(0));
        token.mint(to, amount);
        assertEq(token.balanceOf(to), amount, "balance");
        assertEq(token.totalSupply(), amount, "supply");
    }

    function test_permit_setsAllowanceFromSignature() public {
        (address owner, uint256 key) = makeAddrAndKey("owner");
        address spender = makeAddr("spender");
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                owner,
                spender,
                1e6,
                token.nonces(owner),
                deadline
            )
        );
        bytes32 digest =
            keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);

        token.permit(owner, spender, 1e6, deadline, v, r, s);

        assertEq(token.allowance(owner, spender), 1e6, "allowance");
        assertEq(token.nonces(owner), 1, "nonce");
    }
}
