//! Prints the shared encoding vectors (`contracts/test/vectors/encoding.json`) from the
//! fixed inputs below. Rust and Solidity tests check the committed file independently;
//! regenerate only when the encoding itself changes (see docs/ENCODING.md):
//!
//!     cargo run --example encoding_vectors > contracts/test/vectors/encoding.json

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a generator run by hand; a panic names what is wrong"
)]

use adescrow::adserver::pricing::EventType;
use adescrow::billing::batch::{self, Confirmations, Receipt};
use adescrow::contracts::{ConsentGrant, ConsentRevocation, consent_domain, receipts_domain};
use adescrow::settlement::payout_tree::{PayoutLeaf, PayoutTree};
use alloy::primitives::{Address, B256, U256, address, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct;
use serde_json::json;

const CHAIN_ID: u64 = 31337;
/// The addresses of the first two contracts a fresh anvil's first account deploys.
const REGISTRY: Address = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
const ESCROW: Address = address!("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");

fn main() {
    let usdc = address!("0x00000000000000000000000000000000000a11ce");
    let eurc = address!("0x00000000000000000000000000000000000000b0");
    // Indexes with gaps and one large one, and the first two in one claimed slot.
    let leaves: Vec<PayoutLeaf> = [
        (
            address!("0x1111111111111111111111111111111111111111"),
            usdc,
            0,
            U256::from(1_000_000u64),
        ),
        (
            address!("0x2222222222222222222222222222222222222222"),
            usdc,
            1,
            U256::from(2_500_000u64),
        ),
        (
            address!("0x3333333333333333333333333333333333333333"),
            usdc,
            2,
            U256::from(1u64),
        ),
        (
            address!("0x1111111111111111111111111111111111111111"),
            eurc,
            7,
            U256::from(10u64).pow(U256::from(30u64)),
        ),
        (
            address!("0x4444444444444444444444444444444444444444"),
            eurc,
            1_000_000,
            U256::from(42u64),
        ),
    ]
    .into_iter()
    .map(|(account, token, index, cumulative_amount)| PayoutLeaf {
        account,
        token,
        index,
        cumulative_amount,
    })
    .collect();
    let tree = PayoutTree::new(leaves).expect("five leaves");

    let user = PrivateKeySigner::from_bytes(&keccak256("adescrow vector user")).expect("valid key");
    let scope = keccak256("personalized-ads");
    let grant = ConsentGrant {
        user: user.address(),
        scope,
        expiry: 2_000_000_000,
        nonce: U256::ZERO,
        deadline: U256::from(1_900_000_000u64),
    };
    let revocation = ConsentRevocation {
        user: user.address(),
        scope,
        nonce: U256::from(1u64),
        deadline: U256::from(1_900_000_000u64),
    };
    let consent = consent_domain(CHAIN_ID, REGISTRY);
    let grant_digest = grant.eip712_signing_hash(&consent);
    let revocation_digest = revocation.eip712_signing_hash(&consent);
    let sign = |digest: B256| {
        format!(
            "0x{}",
            hex::encode(user.sign_hash_sync(&digest).expect("signs").as_bytes())
        )
    };

    // Ten receipts, so the witness's bitmap spans two bytes; it confirms 0, 2, 3 and 9.
    let lines: Vec<Receipt> = (0..10u8)
        .map(|i| Receipt {
            ticket: format!("ticket-{i}"),
            event: EventType::ALL[usize::from(i % 4)],
            at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + i64::from(i)).unwrap(),
            viewer: (i % 3 != 0).then(|| format!("vw_{i}")),
            order_ref: (i % 4 == 3).then(|| format!("order-{i}")),
        })
        .collect();
    let confirmed_indexes = [0usize, 2, 3, 9];
    let confirmed = Confirmations::from_fn(lines.len(), |i| confirmed_indexes.contains(&i));
    let hoster = address!("0x5555555555555555555555555555555555555555");
    let witness = address!("0x6666666666666666666666666666666666666666");
    let receipts_hash = batch::receipts_hash(&lines);
    let batch = batch::message(hoster, Some((witness, &confirmed)), 7, receipts_hash);
    let unwitnessed = batch::message(hoster, None, 7, receipts_hash);
    let receipts = receipts_domain(CHAIN_ID, ESCROW);

    let vectors = json!({
        "payoutTree": {
            "accounts": tree.leaves().map(|l| l.account).collect::<Vec<_>>(),
            "tokens": tree.leaves().map(|l| l.token).collect::<Vec<_>>(),
            "indexes": tree.leaves().map(|l| l.index).collect::<Vec<_>>(),
            "cumulativeAmounts": tree.leaves().map(|l| l.cumulative_amount.to_string()).collect::<Vec<_>>(),
            "leafHashes": tree.leaves().map(|l| l.hash()).collect::<Vec<_>>(),
            "root": tree.root(),
            "proofs": (0..tree.len()).map(|i| tree.proof(i)).collect::<Vec<_>>(),
        },
        "consent": {
            "chainId": CHAIN_ID,
            "registry": REGISTRY,
            "domainSeparator": consent.separator(),
            "user": user.address(),
            "scope": scope,
            "grant": {
                "expiry": grant.expiry,
                "nonce": grant.nonce.to_string(),
                "deadline": grant.deadline.to_string(),
                "digest": grant_digest,
                "signature": sign(grant_digest),
            },
            "revocation": {
                "nonce": revocation.nonce.to_string(),
                "deadline": revocation.deadline.to_string(),
                "digest": revocation_digest,
                "signature": sign(revocation_digest),
            },
        },
        "receiptBatch": {
            "chainId": CHAIN_ID,
            "escrow": ESCROW,
            "domainSeparator": receipts.separator(),
            "receipts": lines.iter().map(|r| json!({
                "ticket": r.ticket,
                "event": r.event.code(),
                "at": r.at.unix_timestamp(),
                "viewer": r.viewer.clone().unwrap_or_default(),
                "orderRef": r.order_ref.clone().unwrap_or_default(),
            })).collect::<Vec<_>>(),
            "receiptHashes": lines.iter().map(batch::receipt_hash).collect::<Vec<_>>(),
            "hoster": batch.hoster,
            "witness": batch.witness,
            "sequence": batch.sequence,
            "receiptsHash": batch.receiptsHash,
            "confirmedIndexes": confirmed_indexes,
            "confirmed": batch.confirmed,
            "digest": batch.eip712_signing_hash(&receipts),
            "unwitnessedDigest": unwitnessed.eip712_signing_hash(&receipts),
        },
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string_pretty(&vectors).expect("serializes"));
    }
}
