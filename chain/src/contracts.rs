//! Rust bindings of the contracts and of every message signed for them.
//!
//! The bindings come from the committed artifacts in `contracts/artifacts/` (ABI and
//! creation bytecode, refreshed by `scripts/contracts-artifacts`; `scripts/test` fails when
//! they are stale). `docs/ENCODING.md` specifies the encodings; the shared vectors in
//! `contracts/test/vectors/encoding.json` are checked by Rust and Solidity tests alike.

use alloy::primitives::Address;
use alloy::sol;
use alloy::sol_types::{Eip712Domain, eip712_domain};

/// Generated from the artifacts. Contract functions with many parameters (permit
/// signatures) are the ABI's shape, not ours to change.
#[allow(clippy::too_many_arguments)]
mod bindings {
    use alloy::sol;

    sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        AdEscrow,
        "../contracts/artifacts/AdEscrow.json"
    );

    sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        ConsentRegistry,
        "../contracts/artifacts/ConsentRegistry.json"
    );

    sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        TestToken,
        "../contracts/artifacts/TestToken.json"
    );
}

pub use bindings::{AdEscrow, ConsentRegistry, IAdEscrow, TestToken};

sol! {
    /// The part of ERC-20 the service itself calls, on any token: the treasury's allowance to
    /// the escrow it funds program budgets in, and what a buyer's permit is signed over
    /// (EIP-2612 nonces, the EIP-5267 domain).
    #[sol(rpc)]
    #[derive(Debug)]
    interface Erc20 {
        function approve(address spender, uint256 amount) external returns (bool);
        function allowance(address owner, address spender) external view returns (uint256);
        function nonces(address owner) external view returns (uint256);
        function eip712Domain() external view returns (
            bytes1 fields,
            string name,
            string version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] extensions
        );
    }
}

sol! {
    /// A user's consent to `scope` until `expiry`, signed for `ConsentRegistry.grantBySig`.
    #[derive(Debug, PartialEq, Eq)]
    struct ConsentGrant {
        address user;
        bytes32 scope;
        uint64 expiry;
        uint256 nonce;
        uint256 deadline;
    }

    /// A user's revocation of `scope`, signed for `ConsentRegistry.revokeBySig`.
    #[derive(Debug, PartialEq, Eq)]
    struct ConsentRevocation {
        address user;
        bytes32 scope;
        uint256 nonce;
        uint256 deadline;
    }

    /// A batch of receipts, signed once by the hoster node that showed the ads and once by
    /// the witness node that saw the same beacons, over which receipts the witness saw
    /// itself (`confirmed`, a bitmap; empty without a witness). Verified off chain.
    #[derive(Debug, PartialEq, Eq)]
    struct ReceiptBatch {
        address hoster;
        address witness;
        uint64 sequence;
        bytes32 receiptsHash;
        bytes confirmed;
    }
}

/// The EIP-712 domain of consent messages: the registry on its chain.
pub fn consent_domain(chain_id: u64, registry: Address) -> Eip712Domain {
    eip712_domain! {
        name: "adescrow consent",
        version: "1",
        chain_id: chain_id,
        verifying_contract: registry,
    }
}

/// The EIP-712 domain of receipt batches: bound to the escrow they are billed against.
pub fn receipts_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: "adescrow receipts",
        version: "1",
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}
