//! Which batches count, and as what: a batch is billed only when its hoster key signed it
//! and belongs to an active hoster node. A second node, of another owner and allowed to
//! witness, may co-sign the same message, which names the receipts it observed itself; those
//! receipts count as witnessed (the witnessed split), the others as unwitnessed. A batch with
//! neither a witness nor a witness signature is billed as unwitnessed.

use alloy::primitives::{Address, B256};

use super::batch::{self, Confirmations, ConfirmationsError, Receipt};
use super::{BatchNode, VerifiedBatch};
use crate::accounts::personal_sign::SignatureError;
use crate::adserver::serving::snapshot::ActiveNode;

/// A batch as a hoster node submitted it, before any check.
#[derive(Debug, Clone, Copy)]
pub struct SignedBatch<'a> {
    pub chain_id: u64,
    /// The hoster node's signing address.
    pub hoster: Address,
    /// The witness node's signing address, for a witnessed batch.
    pub witness: Option<Address>,
    pub sequence: u64,
    pub hoster_signature: &'a str,
    pub witness_signature: Option<&'a str>,
    /// Which receipts the witness observed (`docs/ENCODING.md`); with a witness only.
    pub confirmed: Option<&'a [u8]>,
}

/// Why a batch was refused as a whole. Each names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("this API bills chain {expected}")]
    WrongChain { expected: u64 },
    #[error("a batch holds 1 to {max} receipts")]
    Size { max: usize },
    #[error(transparent)]
    HosterSignature(SignatureError),
    #[error("not signed by the hoster key for this batch, chain and escrow")]
    NotSignedByHoster,
    #[error("not a registered, active hoster node")]
    UnknownHoster,
    #[error("a witnessed batch needs the witness's signature")]
    WitnessSignatureMissing,
    #[error("a witness signature needs the witness's address")]
    WitnessMissing,
    #[error(transparent)]
    WitnessSignature(SignatureError),
    #[error("not signed by the witness key for this batch")]
    NotSignedByWitness,
    #[error("not a registered, active node")]
    UnknownWitness,
    #[error("this node is not allowed to witness")]
    NotAWitness,
    #[error("a witness must be another owner's node")]
    SameOwner,
    #[error("a witnessed batch needs the bitmap of the receipts its witness confirms")]
    ConfirmationsMissing,
    #[error("only a witnessed batch confirms receipts")]
    ConfirmationsWithoutWitness,
    #[error(transparent)]
    Confirmations(ConfirmationsError),
}

impl BatchError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::WrongChain { .. } => "chainId",
            Self::Size { .. } => "receipts",
            Self::HosterSignature(_) | Self::NotSignedByHoster => "hosterSignature",
            Self::UnknownHoster => "hoster",
            Self::WitnessSignatureMissing | Self::WitnessSignature(_) | Self::NotSignedByWitness => "witnessSignature",
            Self::WitnessMissing | Self::UnknownWitness | Self::NotAWitness | Self::SameOwner => "witness",
            Self::ConfirmationsMissing | Self::ConfirmationsWithoutWitness | Self::Confirmations(_) => "confirmed",
        }
    }
}

/// What billing takes: batches for its own chain, of 1 to `max_receipts` receipts.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub chain_id: u64,
    pub max_receipts: usize,
}

impl BatchLimits {
    /// Checks a batch's chain and size, before anything about its receipts is read.
    pub fn check(&self, chain_id: u64, receipts: usize) -> Result<(), BatchError> {
        if chain_id != self.chain_id {
            return Err(BatchError::WrongChain {
                expected: self.chain_id,
            });
        }
        if receipts == 0 || receipts > self.max_receipts {
            return Err(BatchError::Size { max: self.max_receipts });
        }
        Ok(())
    }
}

/// Checks a batch's signatures against the node registry (`nodes` looks up an active node
/// by its signing address) and returns it ready to bill.
pub fn verify(
    escrow: Address,
    signed: &SignedBatch<'_>,
    receipts: Vec<Receipt>,
    nodes: impl Fn(Address) -> Option<ActiveNode>,
) -> Result<VerifiedBatch, BatchError> {
    let receipts_hash = batch::receipts_hash(&receipts);
    let confirmed = match (signed.witness, signed.confirmed) {
        (None, None) => Confirmations::default(),
        (None, Some(_)) => return Err(BatchError::ConfirmationsWithoutWitness),
        (Some(_), None) => return Err(BatchError::ConfirmationsMissing),
        (Some(_), Some(bits)) => Confirmations::parse(bits, receipts.len()).map_err(BatchError::Confirmations)?,
    };
    let message = batch::message(
        signed.hoster,
        signed.witness.map(|witness| (witness, &confirmed)),
        signed.sequence,
        receipts_hash,
    );
    let digest = batch::signing_hash(signed.chain_id, escrow, &message);
    let signer = batch::recover(digest, signed.hoster_signature).map_err(BatchError::HosterSignature)?;
    if signer != signed.hoster {
        return Err(BatchError::NotSignedByHoster);
    }
    let hoster = nodes(signed.hoster).ok_or(BatchError::UnknownHoster)?;
    let witness = match (signed.witness, signed.witness_signature) {
        (None, None) => None,
        (Some(_), None) => return Err(BatchError::WitnessSignatureMissing),
        (None, Some(_)) => return Err(BatchError::WitnessMissing),
        (Some(address), Some(signature)) => Some(witness(digest, address, signature, &hoster, &nodes)?),
    };
    let node = |node: ActiveNode| BatchNode {
        node: node.id,
        payee: node.payee,
    };
    Ok(VerifiedBatch {
        hoster: node(hoster),
        witness: witness.map(node),
        sequence: signed.sequence,
        receipts_hash,
        hoster_signature: signature_bytes(signed.hoster_signature),
        witness_signature: signed.witness_signature.map(signature_bytes),
        confirmed,
        receipts,
    })
}

/// The witness of a batch, if its signature and standing let it witness this hoster.
fn witness(
    digest: B256,
    address: Address,
    signature: &str,
    hoster: &ActiveNode,
    nodes: &impl Fn(Address) -> Option<ActiveNode>,
) -> Result<ActiveNode, BatchError> {
    let signer = batch::recover(digest, signature).map_err(BatchError::WitnessSignature)?;
    if signer != address {
        return Err(BatchError::NotSignedByWitness);
    }
    let witness = nodes(address).ok_or(BatchError::UnknownWitness)?;
    if !witness.can_witness {
        return Err(BatchError::NotAWitness);
    }
    if witness.id == hoster.id || witness.owner == hoster.owner {
        return Err(BatchError::SameOwner);
    }
    Ok(witness)
}

/// A signature as stored with its batch: the bytes of a hex string `recover` accepted.
fn signature_bytes(signature: &str) -> Vec<u8> {
    hex::decode(signature.trim_start_matches("0x")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use uuid::Uuid;

    use super::*;

    const CHAIN: u64 = 31337;

    fn node(signer: &PrivateKeySigner, owner: Uuid, can_witness: bool) -> ActiveNode {
        ActiveNode {
            id: Uuid::new_v4(),
            address: signer.address(),
            owner,
            payee: Address::repeat_byte(0x11),
            can_witness,
        }
    }

    fn sign(signer: &PrivateKeySigner, witness: Option<Address>, hoster: Address) -> String {
        let none = Confirmations::default();
        let message = batch::message(hoster, witness.map(|w| (w, &none)), 1, batch::receipts_hash(&[]));
        let digest = batch::signing_hash(CHAIN, Address::ZERO, &message);
        format!("0x{}", hex::encode(signer.sign_hash_sync(&digest).unwrap().as_bytes()))
    }

    /// Verifies a batch by `hoster_key`, witnessed by `witness_key`, against a registry of
    /// the two nodes given.
    fn check(
        hoster: &ActiveNode,
        hoster_key: &PrivateKeySigner,
        witness: &ActiveNode,
        witness_key: &PrivateKeySigner,
    ) -> Result<VerifiedBatch, BatchError> {
        let signed_hoster = sign(hoster_key, Some(witness.address), hoster.address);
        let signed_witness = sign(witness_key, Some(witness.address), hoster.address);
        let signed = SignedBatch {
            chain_id: CHAIN,
            hoster: hoster.address,
            witness: Some(witness.address),
            sequence: 1,
            hoster_signature: &signed_hoster,
            witness_signature: Some(&signed_witness),
            confirmed: Some(&[]),
        };
        let registry = [*hoster, *witness];
        verify(Address::ZERO, &signed, Vec::new(), |address| {
            registry.iter().find(|n| n.address == address).copied()
        })
    }

    #[test]
    fn another_owners_witness_counts() {
        let (hoster_key, witness_key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let hoster = node(&hoster_key, Uuid::new_v4(), false);
        let witness = node(&witness_key, Uuid::new_v4(), true);
        let verified = check(&hoster, &hoster_key, &witness, &witness_key).unwrap();
        assert_eq!(verified.witness.map(|w| w.node), Some(witness.id));
    }

    #[test]
    fn a_witness_of_the_same_owner_or_without_the_flag_does_not() {
        let (hoster_key, witness_key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let owner = Uuid::new_v4();
        let hoster = node(&hoster_key, owner, true);
        let same_owner = node(&witness_key, owner, true);
        assert_eq!(
            check(&hoster, &hoster_key, &same_owner, &witness_key).unwrap_err(),
            BatchError::SameOwner
        );
        let not_a_witness = node(&witness_key, Uuid::new_v4(), false);
        assert_eq!(
            check(&hoster, &hoster_key, &not_a_witness, &witness_key).unwrap_err(),
            BatchError::NotAWitness
        );
    }

    #[test]
    fn a_signature_by_another_key_is_refused_with_its_field() {
        let (hoster_key, witness_key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let hoster = node(&hoster_key, Uuid::new_v4(), false);
        let witness = node(&witness_key, Uuid::new_v4(), true);
        let error = check(&hoster, &witness_key, &witness, &witness_key).unwrap_err();
        assert_eq!(
            (error.field(), error),
            ("hosterSignature", BatchError::NotSignedByHoster)
        );
        let error = check(&hoster, &hoster_key, &witness, &hoster_key).unwrap_err();
        assert_eq!(
            (error.field(), error),
            ("witnessSignature", BatchError::NotSignedByWitness)
        );
    }

    #[test]
    fn limits_refuse_another_chain_and_empty_or_oversized_batches() {
        let limits = BatchLimits {
            chain_id: CHAIN,
            max_receipts: 2,
        };
        assert_eq!(limits.check(CHAIN, 2), Ok(()));
        assert_eq!(limits.check(1, 1), Err(BatchError::WrongChain { expected: CHAIN }));
        assert_eq!(limits.check(CHAIN, 0), Err(BatchError::Size { max: 2 }));
        assert_eq!(limits.check(CHAIN, 3), Err(BatchError::Size { max: 2 }));
    }
}
