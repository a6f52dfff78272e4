//! Receipt batches as nodes sign them: the receipts' hash, which of them the witness saw
//! itself, and the EIP-712 message over the batch (specified in `docs/ENCODING.md`). One
//! signature per node per batch, so signature cost is paid per batch, not per impression.

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::sol_types::SolStruct;
use time::OffsetDateTime;

use crate::accounts::personal_sign::{self, SignatureError};
use crate::adserver::pricing::EventType;
use crate::contracts::{ReceiptBatch, receipts_domain};

/// One reported event, as the hoster node signed it.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The decision ticket, exactly as the ad server issued it.
    pub ticket: String,
    pub event: EventType,
    pub at: OffsetDateTime,
    /// The viewer's pseudonymous id; must match the one the ticket was issued for.
    pub viewer: Option<String>,
    /// Acquisitions only: the advertiser's order reference.
    pub order_ref: Option<String>,
}

impl EventType {
    /// The event's code in receipt hashes.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// `keccak256(abi.encode(keccak256(ticket), uint8 event, uint64 at, keccak256(viewer), keccak256(orderRef)))`
/// with absent strings hashed as empty.
pub fn receipt_hash(receipt: &Receipt) -> B256 {
    const EMPTY: B256 = alloy::primitives::KECCAK256_EMPTY;
    let text = |s: Option<&str>| s.map_or(EMPTY, |s| keccak256(s.as_bytes()));
    // abi.encode of five static values: five 32-byte words, numbers right-aligned.
    let mut words = [0u8; 160];
    words[..32].copy_from_slice(keccak256(receipt.ticket.as_bytes()).as_slice());
    words[63] = receipt.event.code();
    words[88..96].copy_from_slice(&(receipt.at.unix_timestamp().max(0) as u64).to_be_bytes());
    words[96..128].copy_from_slice(text(receipt.viewer.as_deref()).as_slice());
    words[128..].copy_from_slice(text(receipt.order_ref.as_deref()).as_slice());
    keccak256(words)
}

/// `keccak256` of the receipt hashes concatenated in batch order.
pub fn receipts_hash(receipts: &[Receipt]) -> B256 {
    let mut packed = Vec::with_capacity(receipts.len() * 32);
    for receipt in receipts {
        packed.extend_from_slice(receipt_hash(receipt).as_slice());
    }
    keccak256(packed)
}

/// Which receipts of a batch its witness observed itself: receipt `i` is bit `i % 8` (least
/// significant first) of byte `i / 8`. A witnessed batch of `n` receipts carries exactly
/// `ceil(n / 8)` bytes with no bit set past `n`, so every set of receipts has one encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmations(Vec<u8>);

/// Why a bitmap does not fit its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be {bytes} bytes for {receipts} receipts, with no bit set past the last receipt")]
pub struct ConfirmationsError {
    pub receipts: usize,
    pub bytes: usize,
}

impl Confirmations {
    /// The bitmap of `receipts` receipts where `confirmed(i)` says whether receipt `i` was seen.
    pub fn from_fn(receipts: usize, mut confirmed: impl FnMut(usize) -> bool) -> Self {
        let mut bits = vec![0u8; receipts.div_ceil(8)];
        for i in (0..receipts).filter(|&i| confirmed(i)) {
            bits[i / 8] |= 1 << (i % 8);
        }
        Self(bits)
    }

    /// A bitmap as a witness signed it, for a batch of `receipts` receipts.
    pub fn parse(bits: &[u8], receipts: usize) -> Result<Self, ConfirmationsError> {
        let bytes = receipts.div_ceil(8);
        let stray = !receipts.is_multiple_of(8) && bits.last().is_some_and(|last| last >> (receipts % 8) != 0);
        if bits.len() != bytes || stray {
            return Err(ConfirmationsError { receipts, bytes });
        }
        Ok(Self(bits.to_vec()))
    }

    /// Whether the witness confirmed receipt `i`.
    pub fn confirms(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|byte| byte >> (i % 8) & 1 == 1)
    }

    /// How many receipts the witness confirmed.
    pub fn count(&self) -> usize {
        self.0.iter().map(|byte| byte.count_ones() as usize).sum()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The message both nodes sign. An unwitnessed batch names the zero address as its witness
/// and confirms nothing (an empty bitmap).
pub fn message(
    hoster: Address,
    witness: Option<(Address, &Confirmations)>,
    sequence: u64,
    receipts_hash: B256,
) -> ReceiptBatch {
    let (witness, confirmed) = witness.map_or((Address::ZERO, Bytes::new()), |(address, confirmed)| {
        (address, Bytes::copy_from_slice(confirmed.as_bytes()))
    });
    ReceiptBatch {
        hoster,
        witness,
        sequence,
        receiptsHash: receipts_hash,
        confirmed,
    }
}

/// The digest each node signs: `ReceiptBatch` under the receipts domain of this chain and
/// escrow. An unwitnessed batch names the zero address as its witness.
pub fn signing_hash(chain_id: u64, escrow: Address, batch: &ReceiptBatch) -> B256 {
    batch.eip712_signing_hash(&receipts_domain(chain_id, escrow))
}

/// Recovers the signer of a batch digest; 65-byte, low-s signatures only.
pub fn recover(digest: B256, signature: &str) -> Result<Address, SignatureError> {
    personal_sign::parse(signature)?
        .recover_address_from_prehash(&digest)
        .map_err(|_| SignatureError::Unrecoverable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolValue;

    #[test]
    fn receipt_hash_is_abi_encode_of_its_fields() {
        let receipt = Receipt {
            ticket: "ticket".into(),
            event: EventType::Click,
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            viewer: Some("vw_x".into()),
            order_ref: None,
        };
        let expected = keccak256(
            (
                keccak256(b"ticket"),
                alloy::primitives::U256::from(1u8),
                1_700_000_000u64,
                keccak256(b"vw_x"),
                keccak256(b""),
            )
                .abi_encode(),
        );
        assert_eq!(receipt_hash(&receipt), expected);
    }

    #[test]
    fn confirmations_are_one_bit_per_receipt_least_significant_first() {
        let bits = Confirmations::from_fn(10, |i| i == 0 || i == 3 || i == 9);
        assert_eq!(bits.as_bytes(), [0b0000_1001, 0b0000_0010]);
        assert_eq!(bits.count(), 3);
        assert!(bits.confirms(9) && !bits.confirms(8) && !bits.confirms(10));
        assert_eq!(Confirmations::parse(bits.as_bytes(), 10), Ok(bits));
    }

    #[test]
    fn a_bitmap_of_another_length_or_with_bits_past_the_batch_is_refused() {
        let error = ConfirmationsError { receipts: 10, bytes: 2 };
        assert_eq!(Confirmations::parse(&[0xff], 10), Err(error));
        assert_eq!(Confirmations::parse(&[0xff, 0x03, 0], 10), Err(error));
        assert_eq!(Confirmations::parse(&[0xff, 0x04], 10), Err(error));
        assert!(Confirmations::parse(&[0xff], 8).is_ok());
    }
}
