//! The shared encoding vectors (docs/ENCODING.md), checked against the Rust side; the
//! Solidity side checks the same file in contracts/test/Vectors.t.sol.

use adescrow::adserver::pricing::EventType;
use adescrow::billing::batch::{self, Confirmations, Receipt};
use adescrow::contracts::{ConsentGrant, ConsentRevocation, consent_domain, receipts_domain};
use adescrow::settlement::payout_tree::{PayoutLeaf, PayoutTree};
use alloy::primitives::{Address, B256, Signature, U256};
use alloy::sol_types::SolStruct;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contracts/test/vectors/encoding.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn parse<T: std::str::FromStr>(value: &Value) -> T
where
    T::Err: std::fmt::Debug,
{
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"))
        .parse()
        .unwrap()
}

fn u256(value: &Value) -> U256 {
    match value {
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        other => parse(other),
    }
}

#[test]
fn payout_tree_matches_the_vectors() {
    let v = &vectors()["payoutTree"];
    let leaves: Vec<PayoutLeaf> = (0..v["accounts"].as_array().unwrap().len())
        .map(|i| PayoutLeaf {
            account: parse(&v["accounts"][i]),
            token: parse(&v["tokens"][i]),
            index: v["indexes"][i].as_u64().unwrap(),
            cumulative_amount: u256(&v["cumulativeAmounts"][i]),
        })
        .collect();
    let tree = PayoutTree::new(leaves).unwrap();
    assert_eq!(tree.root(), parse::<B256>(&v["root"]), "root");
    for (i, leaf) in tree.leaves().enumerate() {
        assert_eq!(
            leaf.index_and_amount() >> 128,
            U256::from(leaf.index),
            "leaf {i}: the index is the high half"
        );
        assert_eq!(leaf.hash(), parse::<B256>(&v["leafHashes"][i]), "leaf {i} hash");
        let expected: Vec<B256> = v["proofs"][i].as_array().unwrap().iter().map(parse).collect();
        assert_eq!(tree.proof(i), expected, "leaf {i} proof");
    }
}

#[test]
fn consent_digests_and_signatures_match_the_vectors() {
    let v = &vectors()["consent"];
    let domain = consent_domain(v["chainId"].as_u64().unwrap(), parse(&v["registry"]));
    assert_eq!(
        domain.separator(),
        parse::<B256>(&v["domainSeparator"]),
        "domain separator"
    );
    let user: Address = parse(&v["user"]);

    let grant = ConsentGrant {
        user,
        scope: parse(&v["scope"]),
        expiry: v["grant"]["expiry"].as_u64().unwrap(),
        nonce: u256(&v["grant"]["nonce"]),
        deadline: u256(&v["grant"]["deadline"]),
    };
    let digest = grant.eip712_signing_hash(&domain);
    assert_eq!(digest, parse::<B256>(&v["grant"]["digest"]), "grant digest");
    let signature: Signature = parse(&v["grant"]["signature"]);
    assert_eq!(
        signature.recover_address_from_prehash(&digest).unwrap(),
        user,
        "grant signer"
    );

    let revocation = ConsentRevocation {
        user,
        scope: parse(&v["scope"]),
        nonce: u256(&v["revocation"]["nonce"]),
        deadline: u256(&v["revocation"]["deadline"]),
    };
    let digest = revocation.eip712_signing_hash(&domain);
    assert_eq!(digest, parse::<B256>(&v["revocation"]["digest"]), "revocation digest");
    let signature: Signature = parse(&v["revocation"]["signature"]);
    assert_eq!(
        signature.recover_address_from_prehash(&digest).unwrap(),
        user,
        "revocation signer"
    );
}

#[test]
fn receipt_batch_digest_matches_the_vectors() {
    let v = &vectors()["receiptBatch"];
    let domain = receipts_domain(v["chainId"].as_u64().unwrap(), parse(&v["escrow"]));
    assert_eq!(
        domain.separator(),
        parse::<B256>(&v["domainSeparator"]),
        "domain separator"
    );
    let text = |value: &Value| Some(value.as_str().unwrap().to_owned()).filter(|s| !s.is_empty());
    let receipts: Vec<Receipt> = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Receipt {
            ticket: r["ticket"].as_str().unwrap().to_owned(),
            event: EventType::ALL[r["event"].as_u64().unwrap() as usize],
            at: time::OffsetDateTime::from_unix_timestamp(r["at"].as_i64().unwrap()).unwrap(),
            viewer: text(&r["viewer"]),
            order_ref: text(&r["orderRef"]),
        })
        .collect();
    for (i, receipt) in receipts.iter().enumerate() {
        assert_eq!(
            batch::receipt_hash(receipt),
            parse::<B256>(&v["receiptHashes"][i]),
            "receipt {i}"
        );
    }
    let receipts_hash = batch::receipts_hash(&receipts);
    assert_eq!(receipts_hash, parse::<B256>(&v["receiptsHash"]), "receipts hash");
    let indexes: Vec<u64> = v["confirmedIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    let confirmed = Confirmations::from_fn(receipts.len(), |i| indexes.contains(&(i as u64)));
    let bits = hex::decode(v["confirmed"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(
        Confirmations::parse(&bits, receipts.len()),
        Ok(confirmed.clone()),
        "bitmap"
    );
    let (hoster, witness, sequence) = (
        parse(&v["hoster"]),
        parse(&v["witness"]),
        v["sequence"].as_u64().unwrap(),
    );
    let witnessed = batch::message(hoster, Some((witness, &confirmed)), sequence, receipts_hash);
    assert_eq!(
        witnessed.eip712_signing_hash(&domain),
        parse::<B256>(&v["digest"]),
        "digest"
    );
    let unwitnessed = batch::message(hoster, None, sequence, receipts_hash);
    assert_eq!(
        unwitnessed.eip712_signing_hash(&domain),
        parse::<B256>(&v["unwitnessedDigest"]),
        "unwitnessed digest"
    );
}
