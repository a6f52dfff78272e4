//! The witness node: an independent observer. It keeps the beacons pages send it, and
//! co-signs a hoster's batch only for the receipts it observed itself: the same ticket and
//! event, at a time within its tolerance of when the beacon reached it. Only the hoster's own
//! key can ask (its signature of the request), and a batch it signed is answered the same
//! way again, so a hoster's retries are idempotent and nobody can take a hoster's sequence.
//! Confirming one observation in two batches pays nothing twice: billing takes each ticket
//! and event once, so the witness need not (and an impostor could not use it to use up a
//! hoster's observations).

use std::collections::HashSet;
use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use rusqlite::{OptionalExtension, params};

use super::beacons::{Beacon, Taken};
use super::store::{Store, StoreError};
use super::{CosignRequest, Cosigned};
use crate::accounts::personal_sign;
use crate::adserver::pricing::EventType;
use crate::adserver::serving::Ticket;
use crate::billing::batch::{self, Confirmations, Receipt};

/// The most receipts a witness reads in one batch (the API takes no more).
pub const MAX_RECEIPTS: usize = 5_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS observations (
    ticket_hash BLOB NOT NULL,
    event INTEGER NOT NULL,
    at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_hash, event)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cosigned (
    hoster BLOB NOT NULL,
    sequence INTEGER NOT NULL,
    receipts_hash BLOB NOT NULL,
    confirmed BLOB NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (hoster, sequence)
) WITHOUT ROWID;
";

/// Why the witness would not co-sign, naming the field at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CosignError {
    #[error("this witness signs for chain {expected}")]
    WrongChain { expected: u64 },
    #[error("a batch holds 1 to {MAX_RECEIPTS} receipts")]
    Size,
    #[error("receipt {index} has a time no date can hold")]
    Time { index: usize },
    #[error("sequence {0} of this hoster was co-signed for other receipts")]
    SequenceReused(u64),
    #[error("not signed by the hoster key for this request")]
    NotTheHoster,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CosignError {
    pub fn field(&self) -> String {
        match self {
            Self::WrongChain { .. } => "chainId".into(),
            Self::Size => "receipts".into(),
            Self::Time { index } => format!("receipts[{index}].at"),
            Self::SequenceReused(_) => "sequence".into(),
            Self::NotTheHoster => "signature".into(),
            Self::Store(_) => String::new(),
        }
    }
}

/// How a witness signs: its key, and the deployment its signatures are for.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub signer: PrivateKeySigner,
    pub chain_id: u64,
    pub escrow: Address,
    /// How far a receipt's time may be from when the beacon reached the witness.
    pub tolerance_secs: i64,
    /// How long observations are kept past their ticket's expiry.
    pub retention_secs: i64,
}

#[derive(Debug, Clone)]
pub struct Witness {
    store: Store,
    config: WitnessConfig,
}

impl Witness {
    pub fn open(path: &Path, config: WitnessConfig) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::open(path, SCHEMA)?,
            config,
        })
    }

    pub fn address(&self) -> Address {
        self.config.signer.address()
    }

    /// Keeps a page's beacons, seen `now`. Tickets that are not tickets, or expired ones,
    /// are ignored: the witness holds no key, but a ticket's expiry is readable by anyone.
    /// A repeat keeps the first sighting.
    pub async fn observe(&self, beacons: Vec<Beacon>, now: i64) -> Result<Taken, StoreError> {
        let mut kept = Vec::with_capacity(beacons.len());
        for beacon in &beacons {
            match Ticket::read_unverified(&beacon.ticket) {
                Ok(ticket) if ticket.expires_at >= now => {
                    kept.push((
                        keccak256(beacon.ticket.as_bytes()),
                        beacon.event.code(),
                        ticket.expires_at,
                    ));
                }
                _ => {}
            }
        }
        let taken = Taken {
            accepted: kept.len(),
            ignored: beacons.len() - kept.len(),
        };
        if !kept.is_empty() {
            self.store
                .write(move |tx| {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO observations (ticket_hash, event, at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for (ticket, event, expires_at) in kept {
                        insert.execute(params![ticket.as_slice(), event, now, expires_at])?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(taken)
    }

    /// Co-signs a batch for the receipts this witness observed (`docs/ENCODING.md`).
    pub async fn cosign(&self, request: CosignRequest) -> Result<Cosigned, CosignError> {
        if request.chain_id != self.config.chain_id {
            return Err(CosignError::WrongChain {
                expected: self.config.chain_id,
            });
        }
        if request.receipts.is_empty() || request.receipts.len() > MAX_RECEIPTS {
            return Err(CosignError::Size);
        }
        let receipts: Vec<Receipt> = request
            .receipts
            .iter()
            .enumerate()
            .map(|(index, receipt)| receipt.to_receipt().ok_or(CosignError::Time { index }))
            .collect::<Result<_, _>>()?;
        let receipts_hash = batch::receipts_hash(&receipts);
        let message = super::cosign_message(request.hoster, request.chain_id, request.sequence, receipts_hash);
        if personal_sign::recover(&message, &request.signature) != Ok(request.hoster) {
            return Err(CosignError::NotTheHoster);
        }
        let keys: Vec<(B256, EventType, i64)> = receipts
            .iter()
            .map(|r| (keccak256(r.ticket.as_bytes()), r.event, r.at.unix_timestamp()))
            .collect();
        let config = self.config.clone();
        let (hoster, sequence) = (request.hoster, request.sequence);
        let (signed_hash, confirmed, signature) = self
            .store
            .write(move |tx| {
                let earlier = tx
                    .query_row(
                        "SELECT receipts_hash, confirmed, signature FROM cosigned WHERE hoster = ?1 AND sequence = ?2",
                        params![hoster.as_slice(), sequence as i64],
                        |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Vec<u8>>(2)?)),
                    )
                    .optional()?;
                if let Some(earlier) = earlier {
                    return Ok(earlier);
                }
                let mut look = tx.prepare_cached("SELECT at FROM observations WHERE ticket_hash = ?1 AND event = ?2")?;
                let mut in_batch = HashSet::with_capacity(keys.len());
                let mut bits = Vec::with_capacity(keys.len());
                for (ticket, event, at) in &keys {
                    let seen = *event != EventType::Acquisition && in_batch.insert((*ticket, *event));
                    let observed = if seen {
                        look.query_row(params![ticket.as_slice(), event.code()], |row| row.get::<_, i64>(0))
                            .optional()?
                    } else {
                        None
                    };
                    let ok = observed.is_some_and(|seen_at| (at - seen_at).abs() <= config.tolerance_secs);
                    bits.push(ok);
                }
                let confirmed = Confirmations::from_fn(bits.len(), |i| bits[i]);
                let message = batch::message(
                    hoster,
                    Some((config.signer.address(), &confirmed)),
                    sequence,
                    receipts_hash,
                );
                let digest = batch::signing_hash(config.chain_id, config.escrow, &message);
                let signature = config
                    .signer
                    .sign_hash_sync(&digest)
                    .map_err(|error| StoreError::Sqlite(format!("cannot sign: {error}")))?
                    .as_bytes()
                    .to_vec();
                tx.execute(
                    "INSERT INTO cosigned (hoster, sequence, receipts_hash, confirmed, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![hoster.as_slice(), sequence as i64, receipts_hash.as_slice(), confirmed.as_bytes(), signature],
                )?;
                Ok((receipts_hash.to_vec(), confirmed.as_bytes().to_vec(), signature))
            })
            .await?;
        if signed_hash != receipts_hash.as_slice() {
            return Err(CosignError::SequenceReused(sequence));
        }
        let confirmed_count = confirmed.iter().map(|b| b.count_ones() as usize).sum();
        Ok(Cosigned {
            witness: self.address(),
            signature: format!("0x{}", hex::encode(signature)),
            confirmed: Bytes::from(confirmed),
            confirmed_count,
        })
    }

    /// Forgets observations whose tickets expired longer ago than the retention.
    pub async fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let before = now - self.config.retention_secs;
        self.store
            .write(move |tx| Ok(tx.execute("DELETE FROM observations WHERE expires_at < ?1", [before])?))
            .await
    }
}
