// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Test} from "forge-std/Test.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ConsentRegistry} from "../src/ConsentRegistry.sol";
import {IConsentRegistry} from "../src/interfaces/IConsentRegistry.sol";

contract ConsentRegistryTest is Test {
    bytes32 internal constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "ConsentGrant(address user,bytes32 scope,uint64 expiry,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant REVOCATION_TYPEHASH =
        keccak256("ConsentRevocation(address user,bytes32 scope,uint256 nonce,uint256 deadline)");
    /// @dev Order of the secp256k1 group; s above half of it is the malleable twin.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    bytes32 internal constant SCOPE = keccak256(bytes("analytics"));
    bytes32 internal constant OTHER_SCOPE = keccak256(bytes("personalised ads"));

    ConsentRegistry internal registry;
    address internal user;
    uint256 internal userKey;
    address internal mallory;
    uint256 internal malloryKey;
    address internal relayer = makeAddr("relayer");

    function setUp() public {
        vm.warp(1_700_000_000);
        registry = new ConsentRegistry();
        (user, userKey) = makeAddrAndKey("user");
        (mallory, malloryKey) = makeAddrAndKey("mallory");
    }

    // ---------------------------------------------------------------------------------
    // Signing helpers, computed independently of the contract
    // ---------------------------------------------------------------------------------

    function _domainSeparator(address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256(bytes("adescrow consent")),
                keccak256(bytes("1")),
                block.chainid,
                verifyingContract
            )
        );
    }

    function _digest(address verifyingContract, bytes32 structHash)
        internal
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked("\x19\x01", _domainSeparator(verifyingContract), structHash)
        );
    }

    function _grantHash(bytes32 scope, uint64 expiry, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(GRANT_TYPEHASH, user, scope, expiry, nonce, deadline));
    }

    function _revocationHash(bytes32 scope, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(REVOCATION_TYPEHASH, user, scope, nonce, deadline));
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signGrant(uint256 key, bytes32 scope, uint64 expiry, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return _sign(key, _digest(address(registry), _grantHash(scope, expiry, nonce, deadline)));
    }

    function _signRevocation(uint256 key, bytes32 scope, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return _sign(key, _digest(address(registry), _revocationHash(scope, nonce, deadline)));
    }

    /// @dev Who `signature` recovers to for `digest`, as a failing check will report.
    function _recover(bytes32 digest, bytes memory signature) internal pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        return ecrecover(digest, v, r, s);
    }

    function _split(bytes memory signature) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
    }

    function _expiry() internal view returns (uint64) {
        return uint64(block.timestamp + 365 days);
    }

    function _deadline() internal view returns (uint256) {
        return block.timestamp + 1 hours;
    }

    // ---------------------------------------------------------------------------------
    // grant / revoke / hasConsent
    // ---------------------------------------------------------------------------------

    function test_domainSeparator_matchesSpec() public view {
        assertEq(registry.DOMAIN_SEPARATOR(), _domainSeparator(address(registry)), "domain");
        assertEq(registry.GRANT_TYPEHASH(), GRANT_TYPEHASH, "grant typehash");
        assertEq(registry.REVOCATION_TYPEHASH(), REVOCATION_TYPEHASH, "revocation typehash");
    }

    function test_grant_recordsConsentAndEmits() public {
        uint64 expiry = _expiry();
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentGranted(user, SCOPE, expiry);
        vm.prank(user);
        registry.grant(SCOPE, expiry);

        assertTrue(registry.hasConsent(user, SCOPE), "consent");
        assertEq(registry.consentExpiry(user, SCOPE), expiry, "expiry");
        assertFalse(registry.hasConsent(user, OTHER_SCOPE), "other scope");
        assertFalse(registry.hasConsent(mallory, SCOPE), "other user");
    }

    function test_grant_replacesEarlierExpiry() public {
        vm.startPrank(user);
        registry.grant(SCOPE, _expiry());
        registry.grant(SCOPE, uint64(block.timestamp + 1 days));
        vm.stopPrank();
        assertEq(registry.consentExpiry(user, SCOPE), block.timestamp + 1 days, "expiry");
    }

    function test_grant_revertsOnExpiryNotInFuture() public {
        uint64 now_ = uint64(block.timestamp);
        vm.startPrank(user);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidExpiry.selector, now_)
        );
        registry.grant(SCOPE, now_);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidExpiry.selector, now_ - 1)
        );
        registry.grant(SCOPE, now_ - 1);
        vm.stopPrank();
    }

    function test_hasConsent_endsAtExpiry() public {
        uint64 expiry = _expiry();
        vm.prank(user);
        registry.grant(SCOPE, expiry);

        vm.warp(expiry - 1);
        assertTrue(registry.hasConsent(user, SCOPE), "before expiry");
        vm.warp(expiry);
        assertFalse(registry.hasConsent(user, SCOPE), "at expiry");
        assertEq(registry.consentExpiry(user, SCOPE), expiry, "expiry kept");
    }

    function test_revoke_clearsConsentAndEmits() public {
        vm.startPrank(user);
        registry.grant(SCOPE, _expiry());
        registry.grant(OTHER_SCOPE, _expiry());
        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentRevoked(user, SCOPE);
        registry.revoke(SCOPE);
        vm.stopPrank();

        assertFalse(registry.hasConsent(user, SCOPE), "revoked");
        assertEq(registry.consentExpiry(user, SCOPE), 0, "expiry cleared");
        assertTrue(registry.hasConsent(user, OTHER_SCOPE), "other scope kept");
    }

    function test_revoke_onlyAffectsCaller() public {
        vm.prank(user);
        registry.grant(SCOPE, _expiry());
        vm.prank(mallory);
        registry.revoke(SCOPE);
        assertTrue(registry.hasConsent(user, SCOPE), "user's consent kept");
    }

    function testFuzz_grant_holdsUntilExpiry(uint64 expiry, uint64 when) public {
        expiry = uint64(bound(expiry, block.timestamp + 1, type(uint64).max));
        when = uint64(bound(when, block.timestamp, type(uint64).max));
        vm.prank(user);
        registry.grant(SCOPE, expiry);
        vm.warp(when);
        assertEq(registry.hasConsent(user, SCOPE), when < expiry, "consent iff before expiry");
    }

    // ---------------------------------------------------------------------------------
    // grantBySig
    // ---------------------------------------------------------------------------------

    function test_grantBySig_grantsForSigner() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);

        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentGranted(user, SCOPE, expiry);
        vm.prank(relayer);
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);

        assertTrue(registry.hasConsent(user, SCOPE), "consent");
        assertEq(registry.nonces(user), 1, "nonce used");
        assertFalse(registry.hasConsent(relayer, SCOPE), "relayer gets nothing");
    }

    function test_grantBySig_acceptsDeadlineNow() public {
        uint256 deadline = block.timestamp;
        bytes memory signature = _signGrant(userKey, SCOPE, _expiry(), 0, deadline);
        registry.grantBySig(user, SCOPE, _expiry(), 0, deadline, signature);
        assertTrue(registry.hasConsent(user, SCOPE), "consent");
    }

    function test_grantBySig_revertsOnReplay() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);

        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, user, 1));
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnFutureNonce() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, user, 0));
        registry.grantBySig(user, SCOPE, expiry, 1, deadline, signature);
    }

    function test_grantBySig_revertsAfterDeadline() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentExpiredSignature.selector, deadline)
        );
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnOtherSigner() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(malloryKey, SCOPE, expiry, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, mallory, user)
        );
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnAlteredFields() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        // The relayer stretches the expiry the user agreed to.
        uint64 longer = expiry + 365 days;
        address recovered =
            _recover(_digest(address(registry), _grantHash(SCOPE, longer, 0, deadline)), signature);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, recovered, user)
        );
        registry.grantBySig(user, SCOPE, longer, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnOtherChain() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);

        vm.chainId(block.chainid + 1);
        bytes32 digest = _digest(address(registry), _grantHash(SCOPE, expiry, 0, deadline));
        assertEq(registry.DOMAIN_SEPARATOR(), _domainSeparator(address(registry)), "new domain");
        address recovered = _recover(digest, signature);
        assertTrue(recovered != user, "recovers someone else");
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, recovered, user)
        );
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnOtherRegistry() public {
        ConsentRegistry other = new ConsentRegistry();
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);

        address recovered =
            _recover(_digest(address(other), _grantHash(SCOPE, expiry, 0, deadline)), signature);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, recovered, user)
        );
        other.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
    }

    function test_grantBySig_revertsOnHighS() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        // The malleable twin: same r, s' = n - s, flipped parity. ecrecover accepts it.
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        bytes32 digest = _digest(address(registry), _grantHash(SCOPE, expiry, 0, deadline));
        assertEq(ecrecover(digest, flippedV, r, highS), user, "twin recovers the user");

        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, abi.encodePacked(r, highS, flippedV));
    }

    function test_grantBySig_revertsOnShortSignature() public {
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        (bytes32 r, bytes32 s,) = _split(_signGrant(userKey, SCOPE, expiry, 0, deadline));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 64));
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, abi.encodePacked(r, s));
    }

    function test_grantBySig_revertsOnPastExpiryAndKeepsNonce() public {
        uint64 expiry = uint64(block.timestamp + 1 days);
        uint256 deadline = block.timestamp + 2 days;
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        vm.warp(expiry);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidExpiry.selector, expiry)
        );
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, signature);
        assertEq(registry.nonces(user), 0, "nonce not used");
    }

    function testFuzz_grantBySig_acceptsAnySigner(uint256 key, bytes32 scope) public {
        key = bound(key, 1, SECP256K1_N - 1);
        address signer = vm.addr(key);
        uint64 expiry = _expiry();
        uint256 deadline = _deadline();
        bytes memory signature = _sign(
            key,
            _digest(
                address(registry),
                keccak256(abi.encode(GRANT_TYPEHASH, signer, scope, expiry, 0, deadline))
            )
        );
        registry.grantBySig(signer, scope, expiry, 0, deadline, signature);
        assertTrue(registry.hasConsent(signer, scope), "consent");
        assertEq(registry.nonces(signer), 1, "nonce");
    }

    // ---------------------------------------------------------------------------------
    // revokeBySig
    // ---------------------------------------------------------------------------------

    function test_revokeBySig_revokesForSigner() public {
        vm.prank(user);
        registry.grant(SCOPE, _expiry());
        uint256 deadline = _deadline();
        bytes memory signature = _signRevocation(userKey, SCOPE, 0, deadline);

        vm.expectEmit(address(registry));
        emit IConsentRegistry.ConsentRevoked(user, SCOPE);
        vm.prank(relayer);
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);

        assertFalse(registry.hasConsent(user, SCOPE), "revoked");
        assertEq(registry.nonces(user), 1, "nonce used");
    }

    function test_revokeBySig_revertsOnReplay() public {
        uint256 deadline = _deadline();
        bytes memory signature = _signRevocation(userKey, SCOPE, 0, deadline);
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, user, 1));
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
    }

    function test_revokeBySig_revertsAfterDeadline() public {
        uint256 deadline = _deadline();
        bytes memory signature = _signRevocation(userKey, SCOPE, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentExpiredSignature.selector, deadline)
        );
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
    }

    function test_revokeBySig_revertsOnOtherSigner() public {
        uint256 deadline = _deadline();
        bytes memory signature = _signRevocation(malloryKey, SCOPE, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, mallory, user)
        );
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
    }

    function test_revokeBySig_revertsOnOtherChain() public {
        uint256 deadline = _deadline();
        bytes memory signature = _signRevocation(userKey, SCOPE, 0, deadline);
        vm.chainId(block.chainid + 1);
        address recovered =
            _recover(_digest(address(registry), _revocationHash(SCOPE, 0, deadline)), signature);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, recovered, user)
        );
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
    }

    function test_revokeBySig_revertsOnHighS() public {
        uint256 deadline = _deadline();
        (bytes32 r, bytes32 s, uint8 v) = _split(_signRevocation(userKey, SCOPE, 0, deadline));
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        registry.revokeBySig(user, SCOPE, 0, deadline, abi.encodePacked(r, highS, v ^ 1));
    }

    function test_revokeBySig_rejectsGrantSignature() public {
        uint256 deadline = _deadline();
        uint64 expiry = _expiry();
        bytes memory signature = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        address recovered =
            _recover(_digest(address(registry), _revocationHash(SCOPE, 0, deadline)), signature);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentRegistry.ConsentInvalidSigner.selector, recovered, user)
        );
        registry.revokeBySig(user, SCOPE, 0, deadline, signature);
    }

    function test_bySig_grantAndRevocationShareNonces() public {
        uint256 deadline = _deadline();
        uint64 expiry = _expiry();
        bytes memory grantSig = _signGrant(userKey, SCOPE, expiry, 0, deadline);
        bytes memory revokeSig = _signRevocation(userKey, SCOPE, 0, deadline);
        registry.revokeBySig(user, SCOPE, 0, deadline, revokeSig);

        // The grant signed alongside with the same nonce is dead now.
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, user, 1));
        registry.grantBySig(user, SCOPE, expiry, 0, deadline, grantSig);
    }
}
