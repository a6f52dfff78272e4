//! The hoster node a publisher runs with its node key.
//!
//! It gets the page's decisions from the API through its node session and remembers each
//! ticket it handed out; it takes the page's beacons for those tickets (others are ignored)
//! and keeps one observation per ticket and event, timed by its own clock. The batcher
//! cuts the observations into receipt batches by size and age, asks the witness to co-sign,
//! and submits. Everything is in the node's SQLite store before it is acknowledged or sent:
//! a batch keeps its sequence and its receipts through restarts and retries, so a retry is
//! the same batch (the API answers it again and bills nothing twice) and no observation is
//! lost or put in two batches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use rusqlite::params;
use url::Url;

use super::api::{ApiClient, BatchBody, CallError, Decision, DecisionRequest};
use super::beacons::{Beacon, Taken};
use super::store::{Store, StoreError};
use super::{CosignRequest, Cosigned, WireReceipt};
use crate::adserver::pricing::EventType;
use crate::billing::batch::{self, Confirmations};
use crate::platform::worker::{Role, StepError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tickets (
    ticket TEXT PRIMARY KEY,
    viewer TEXT,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS observations (
    ticket TEXT NOT NULL REFERENCES tickets (ticket),
    event INTEGER NOT NULL,
    at INTEGER NOT NULL,
    -- The batch it went into; NULL while it waits.
    sequence INTEGER,
    PRIMARY KEY (ticket, event)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS observations_waiting ON observations (at) WHERE sequence IS NULL;
CREATE TABLE IF NOT EXISTS batches (
    sequence INTEGER PRIMARY KEY,
    cut_at INTEGER NOT NULL,
    -- The receipts in batch order, as JSON: fixed once cut.
    receipts TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('witnessing', 'submitting', 'done', 'failed')),
    witness TEXT,
    witness_signature TEXT,
    confirmed BLOB,
    answer TEXT,
    note TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The observations ready for a batch (`?1` is now): not in one yet, and impressions, or
/// clicks and views whose impression was seen (billing takes a click only after it) or
/// whose ticket expired (nothing more will come).
const READY: &str = "FROM observations o JOIN tickets t ON t.ticket = o.ticket
    WHERE o.sequence IS NULL
      AND (o.event = 0 OR t.expires_at < ?1
           OR EXISTS (SELECT 1 FROM observations i WHERE i.ticket = o.ticket AND i.event = 0))";

/// How the node batches and submits.
#[derive(Debug, Clone)]
pub struct HosterConfig {
    pub signer: PrivateKeySigner,
    pub chain_id: u64,
    pub escrow: Address,
    /// The witness node's base URL; without one, batches are submitted unwitnessed.
    pub witness: Option<Url>,
    /// Receipts per batch at most.
    pub batch_size: usize,
    /// The longest an observation waits for its batch to be cut.
    pub batch_age: Duration,
    /// How long one call to the witness may take.
    pub witness_timeout: Duration,
    /// How long a batch waits for its witness before it is submitted unwitnessed.
    pub witness_patience: Duration,
}

#[derive(Debug)]
pub struct HosterNode {
    store: Store,
    api: ApiClient,
    config: HosterConfig,
    /// The live tickets and their expiry, so that a beacon is judged without a disk read.
    tickets: RwLock<HashMap<String, i64>>,
}

impl HosterNode {
    /// Opens the node's store, creating it (and its first sequence number) if needed.
    pub async fn open(path: &Path, api: ApiClient, config: HosterConfig) -> Result<Self, StoreError> {
        let store = Store::open(path, SCHEMA)?;
        let now = super::now();
        // Sequences start at the store's creation time in milliseconds, so that a node whose
        // store was lost does not reuse the numbers of batches the API already holds.
        let first = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(1);
        store
            .write(move |tx| {
                tx.execute("INSERT OR IGNORE INTO settings VALUES ('next_sequence', ?1)", [first])?;
                Ok(())
            })
            .await?;
        let live = store
            .read(move |connection| {
                let mut rows = connection.prepare("SELECT ticket, expires_at FROM tickets WHERE expires_at >= ?1")?;
                let live = rows
                    .query_map([now], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?
                    .collect::<Result<HashMap<_, _>, _>>()?;
                Ok(live)
            })
            .await?;
        Ok(Self {
            store,
            api,
            config,
            tickets: RwLock::new(live),
        })
    }

    pub fn address(&self) -> Address {
        self.config.signer.address()
    }

    /// A decision for one slot of a page, from the API; the node remembers each ticket
    /// before the page gets it, so that it takes beacons for it.
    pub async fn fill(&self, request: &DecisionRequest) -> Result<Decision, FillError> {
        let decision = self.api.decide(request).await?;
        let issued = decision
            .ads
            .iter()
            .map(|ad| {
                (
                    ad.ticket.clone(),
                    request.viewer.clone(),
                    ad.expires_at.unix_timestamp(),
                )
            })
            .collect();
        self.remember(issued).await?;
        Ok(decision)
    }

    /// Remembers tickets handed out to pages: (ticket, viewer, expiry in unix seconds), on
    /// disk first.
    pub async fn remember(&self, issued: Vec<(String, Option<String>, i64)>) -> Result<(), StoreError> {
        let rows = issued.clone();
        self.store
            .write(move |tx| {
                let mut insert = tx
                    .prepare_cached("INSERT OR IGNORE INTO tickets (ticket, viewer, expires_at) VALUES (?1, ?2, ?3)")?;
                for (ticket, viewer, expires_at) in rows {
                    insert.execute(params![ticket, viewer, expires_at])?;
                }
                Ok(())
            })
            .await?;
        self.tickets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(issued.into_iter().map(|(ticket, _, expires_at)| (ticket, expires_at)));
        Ok(())
    }

    /// Keeps a page's beacons for the node's live tickets, seen `now`; beacons for tickets
    /// it did not hand out, or that expired, are ignored. A repeat keeps the first sighting.
    pub async fn observe(&self, beacons: Vec<Beacon>, now: i64) -> Result<Taken, StoreError> {
        let total = beacons.len();
        let kept: Vec<(String, u8)> = {
            let tickets = self.tickets.read().unwrap_or_else(PoisonError::into_inner);
            beacons
                .into_iter()
                .filter(|beacon| tickets.get(&beacon.ticket).is_some_and(|&expires_at| expires_at >= now))
                .map(|beacon| (beacon.ticket, beacon.event.code()))
                .collect()
        };
        let accepted = kept.len();
        let ignored = total - accepted;
        if accepted > 0 {
            self.store
                .write(move |tx| {
                    let mut insert = tx
                        .prepare_cached("INSERT OR IGNORE INTO observations (ticket, event, at) VALUES (?1, ?2, ?3)")?;
                    for (ticket, event) in kept {
                        insert.execute(params![ticket, event, now])?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(Taken { accepted, ignored })
    }

    /// Cuts the observations that are ready ([`READY`]) into batches: a full one whenever
    /// enough are ready, and a smaller one once the oldest has waited `batch_age`.
    pub async fn cut(&self, now: i64) -> Result<usize, StoreError> {
        let size = self.config.batch_size;
        let age = i64::try_from(self.config.batch_age.as_secs()).unwrap_or(i64::MAX);
        let witnessed = self.config.witness.is_some();
        self.store
            .write(move |tx| {
                let mut cut = 0;
                loop {
                    let (waiting, oldest): (i64, Option<i64>) =
                        tx.query_row(&format!("SELECT count(*), min(o.at) {READY}"), [now], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })?;
                    let due = oldest.is_some_and(|oldest| now - oldest >= age);
                    if waiting == 0 || (usize::try_from(waiting).unwrap_or(usize::MAX) < size && !due) {
                        return Ok(cut);
                    }
                    let mut select = tx.prepare_cached(&format!(
                        "SELECT o.ticket, o.event, o.at, t.viewer {READY} ORDER BY o.at, o.event LIMIT ?2"
                    ))?;
                    let rows = select
                        .query_map(params![now, size as i64], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, u8>(1)?,
                                row.get::<_, i64>(2)?,
                                row.get(3)?,
                            ))
                        })?
                        .collect::<Result<Vec<(String, u8, i64, Option<String>)>, _>>()?;
                    let sequence: i64 =
                        tx.query_row("SELECT value FROM settings WHERE name = 'next_sequence'", [], |row| {
                            row.get(0)
                        })?;
                    tx.execute("UPDATE settings SET value = value + 1 WHERE name = 'next_sequence'", [])?;
                    let mut assign =
                        tx.prepare_cached("UPDATE observations SET sequence = ?3 WHERE ticket = ?1 AND event = ?2")?;
                    let mut receipts = Vec::with_capacity(rows.len());
                    for (ticket, event, at, viewer) in rows {
                        assign.execute(params![ticket, event, sequence])?;
                        receipts.push(WireReceipt {
                            ticket,
                            event: event_of(event),
                            at,
                            viewer,
                            order_ref: None,
                        });
                    }
                    let receipts = serde_json::to_string(&receipts).map_err(|e| StoreError::Sqlite(e.to_string()))?;
                    let state = if witnessed { "witnessing" } else { "submitting" };
                    tx.execute(
                        "INSERT INTO batches (sequence, cut_at, receipts, state) VALUES (?1, ?2, ?3, ?4)",
                        params![sequence, now, receipts, state],
                    )?;
                    cut += 1;
                }
            })
            .await
    }

    /// Moves every batch that is due one step on: to its witness, then to the API. Returns
    /// how many the API answered.
    pub async fn advance(&self, now: i64) -> Result<usize, StoreError> {
        let due = self
            .store
            .read(move |connection| {
                let mut select = connection.prepare_cached(
                    "SELECT sequence, cut_at, receipts, state, witness, witness_signature, confirmed, attempts FROM batches
                     WHERE state IN ('witnessing', 'submitting') AND retry_at <= ?1 ORDER BY sequence LIMIT 32",
                )?;
                let rows = select
                    .query_map([now], |row| {
                        Ok(Pending {
                            sequence: row.get(0)?,
                            cut_at: row.get(1)?,
                            receipts: row.get(2)?,
                            witnessing: row.get::<_, String>(3)? == "witnessing",
                            witness: row.get(4)?,
                            witness_signature: row.get(5)?,
                            confirmed: row.get(6)?,
                            attempts: row.get(7)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        let mut answered = 0;
        for batch in due {
            if self.advance_one(batch, now).await? {
                answered += 1;
            }
        }
        Ok(answered)
    }

    /// One batch one step on; `true` once the API answered it.
    async fn advance_one(&self, mut batch: Pending, now: i64) -> Result<bool, StoreError> {
        let sequence = batch.sequence;
        let Ok(receipts) = serde_json::from_str::<Vec<WireReceipt>>(&batch.receipts) else {
            self.fail(sequence, "its stored receipts do not read".into(), false)
                .await?;
            return Ok(false);
        };
        if batch.witnessing {
            match self.ask_witness(&batch, &receipts, now).await {
                WitnessStep::Later => {
                    self.retry_later(&batch, now).await?;
                    return Ok(false);
                }
                WitnessStep::Signed(cosigned) => {
                    batch.witness = Some(cosigned.witness.to_string());
                    batch.witness_signature = Some(cosigned.signature);
                    batch.confirmed = Some(cosigned.confirmed.to_vec());
                }
                WitnessStep::GiveUp(reason) => {
                    tracing::warn!(sequence, %reason, "submitting the batch unwitnessed");
                }
            }
            let (witness, signature, confirmed) = (
                batch.witness.clone(),
                batch.witness_signature.clone(),
                batch.confirmed.clone(),
            );
            self.store
                .write(move |tx| {
                    tx.execute(
                        "UPDATE batches SET state = 'submitting', witness = ?2, witness_signature = ?3, confirmed = ?4
                         WHERE sequence = ?1",
                        params![sequence, witness, signature, confirmed],
                    )?;
                    Ok(())
                })
                .await?;
        }
        self.submit(&batch, receipts, now).await
    }

    /// Asks the witness to co-sign, and checks what it signed.
    async fn ask_witness(&self, batch: &Pending, receipts: &[WireReceipt], now: i64) -> WitnessStep {
        let Some(url) = &self.config.witness else {
            return WitnessStep::GiveUp("no witness is configured".into());
        };
        let sequence = batch.sequence as u64;
        let request =
            match CosignRequest::signed(&self.config.signer, self.config.chain_id, sequence, receipts.to_vec()) {
                Ok(request) => request,
                Err(reason) => return WitnessStep::GiveUp(reason),
            };
        let patience = i64::try_from(self.config.witness_patience.as_secs()).unwrap_or(i64::MAX);
        match self.api.cosign(url, &request, self.config.witness_timeout).await {
            Ok(cosigned) => match self.check_cosigned(&cosigned, receipts, sequence) {
                Ok(()) => WitnessStep::Signed(cosigned),
                Err(reason) => WitnessStep::GiveUp(reason),
            },
            Err(CallError::Refused { detail, .. }) => WitnessStep::GiveUp(format!("the witness refused: {detail}")),
            Err(CallError::Transient(error)) if now - batch.cut_at >= patience => {
                WitnessStep::GiveUp(format!("the witness did not answer in time: {error}"))
            }
            Err(CallError::Transient(_)) => WitnessStep::Later,
        }
    }

    /// A witness's answer is used only if its signature is its own, over this batch and the
    /// receipts it says it confirms.
    fn check_cosigned(&self, cosigned: &Cosigned, receipts: &[WireReceipt], sequence: u64) -> Result<(), String> {
        let parsed: Option<Vec<_>> = receipts.iter().map(WireReceipt::to_receipt).collect();
        let parsed = parsed.ok_or("a receipt time no date holds")?;
        let confirmed = Confirmations::parse(&cosigned.confirmed, receipts.len()).map_err(|e| e.to_string())?;
        let message = batch::message(
            self.address(),
            Some((cosigned.witness, &confirmed)),
            sequence,
            batch::receipts_hash(&parsed),
        );
        let digest = batch::signing_hash(self.config.chain_id, self.config.escrow, &message);
        match batch::recover(digest, &cosigned.signature) {
            Ok(signer) if signer == cosigned.witness => Ok(()),
            _ => Err("the witness's signature is not its own over this batch".into()),
        }
    }

    /// Signs and submits a batch. The body is a function of what is stored, so a retry is
    /// the same batch.
    async fn submit(&self, batch: &Pending, receipts: Vec<WireReceipt>, now: i64) -> Result<bool, StoreError> {
        let sequence = batch.sequence;
        let body = match self.body(batch, receipts) {
            Ok(body) => body,
            Err(reason) => {
                self.fail(sequence, reason, false).await?;
                return Ok(false);
            }
        };
        match self.api.submit(&body).await {
            Ok(answer) => {
                let answer = answer.to_string();
                self.store
                    .write(move |tx| {
                        tx.execute(
                            "UPDATE batches SET state = 'done', answer = ?2, note = NULL WHERE sequence = ?1",
                            params![sequence, answer],
                        )?;
                        Ok(())
                    })
                    .await?;
                Ok(true)
            }
            // The API holds another batch under this sequence: this one was not billed, so
            // its observations go into a new batch.
            Err(CallError::Refused {
                status: 409, detail, ..
            }) => {
                self.fail(sequence, detail, true).await?;
                Ok(false)
            }
            // The API refused the witness part (a node it does not know as a witness, say):
            // nothing was stored, so the same sequence goes again without it.
            Err(CallError::Refused { field, detail, .. })
                if body.witness.is_some() && ["witness", "witnessSignature", "confirmed"].contains(&field.as_str()) =>
            {
                tracing::warn!(sequence, %detail, "the API refused the witness; submitting unwitnessed");
                self.store
                    .write(move |tx| {
                        tx.execute(
                            "UPDATE batches SET witness = NULL, witness_signature = NULL, confirmed = NULL, note = ?2
                             WHERE sequence = ?1",
                            params![sequence, detail],
                        )?;
                        Ok(())
                    })
                    .await?;
                Ok(false)
            }
            Err(CallError::Refused { field, detail, .. }) => {
                self.fail(sequence, format!("{field}: {detail}"), false).await?;
                Ok(false)
            }
            Err(CallError::Transient(error)) => {
                tracing::warn!(sequence, %error, "the API did not take the batch; retrying");
                self.retry_later(batch, now).await?;
                Ok(false)
            }
        }
    }

    fn body(&self, batch: &Pending, receipts: Vec<WireReceipt>) -> Result<BatchBody, String> {
        let parsed: Option<Vec<_>> = receipts.iter().map(WireReceipt::to_receipt).collect();
        let parsed = parsed.ok_or("a receipt time no date holds")?;
        let witness = match (&batch.witness, &batch.witness_signature, &batch.confirmed) {
            (Some(address), Some(signature), Some(bits)) => {
                let address: Address = address.parse().map_err(|_| "a stored witness address does not read")?;
                let confirmed = Confirmations::parse(bits, receipts.len()).map_err(|e| e.to_string())?;
                Some((address, signature.clone(), confirmed))
            }
            _ => None,
        };
        let sequence = batch.sequence as u64;
        let message = batch::message(
            self.address(),
            witness.as_ref().map(|(address, _, confirmed)| (*address, confirmed)),
            sequence,
            batch::receipts_hash(&parsed),
        );
        let digest = batch::signing_hash(self.config.chain_id, self.config.escrow, &message);
        let signature = self.config.signer.sign_hash_sync(&digest).map_err(|e| e.to_string())?;
        Ok(BatchBody {
            chain_id: self.config.chain_id,
            hoster: self.address(),
            witness: witness.as_ref().map(|(address, ..)| *address),
            sequence,
            receipts,
            hoster_signature: format!("0x{}", hex::encode(signature.as_bytes())),
            witness_signature: witness.as_ref().map(|(_, signature, _)| signature.clone()),
            confirmed: witness.map(|(.., confirmed)| Bytes::copy_from_slice(confirmed.as_bytes())),
        })
    }

    /// Tries the batch again after a backoff: 1 s, 2 s, 4 s, ... up to a minute.
    async fn retry_later(&self, batch: &Pending, now: i64) -> Result<(), StoreError> {
        let sequence = batch.sequence;
        let retry_at = now + (1i64 << batch.attempts.clamp(0, 6)).min(60);
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE batches SET attempts = attempts + 1, retry_at = ?2 WHERE sequence = ?1",
                    params![sequence, retry_at],
                )?;
                Ok(())
            })
            .await
    }

    /// Gives up on a batch, saying why; `release` puts its observations back to wait for a
    /// new batch (only when the API certainly did not bill it).
    async fn fail(&self, sequence: i64, reason: String, release: bool) -> Result<(), StoreError> {
        tracing::error!(sequence, %reason, release, "batch given up");
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE batches SET state = 'failed', note = ?2 WHERE sequence = ?1",
                    params![sequence, reason],
                )?;
                if release {
                    tx.execute(
                        "UPDATE observations SET sequence = NULL WHERE sequence = ?1",
                        [sequence],
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Forgets what is settled and a day old: answered batches and their observations, and
    /// tickets that expired with nothing waiting on them. A beacon repeated later finds its
    /// ticket expired and is ignored, so nothing forgotten can be billed again.
    pub async fn forget_expired(&self, now: i64) -> Result<(), StoreError> {
        let before = now - 86_400;
        self.tickets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, expires_at| *expires_at >= now);
        self.store
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM observations WHERE sequence IN (SELECT sequence FROM batches WHERE state = 'done' AND cut_at < ?1)",
                    [before],
                )?;
                tx.execute("DELETE FROM batches WHERE state = 'done' AND cut_at < ?1", [before])?;
                tx.execute(
                    "DELETE FROM tickets WHERE expires_at < ?1 AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.ticket = tickets.ticket)",
                    [before],
                )?;
                Ok(())
            })
            .await
    }

    /// The batches the node holds, by state (for its status page and tests).
    pub async fn batch_states(&self) -> Result<HashMap<String, i64>, StoreError> {
        self.store
            .read(|connection| {
                let mut select = connection.prepare_cached("SELECT state, count(*) FROM batches GROUP BY state")?;
                let states = select
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<HashMap<_, _>, _>>()?;
                Ok(states)
            })
            .await
    }
}

/// Where asking the witness left a batch.
enum WitnessStep {
    Signed(Cosigned),
    /// Submit unwitnessed, for this reason.
    GiveUp(String),
    /// Ask again later.
    Later,
}

/// The batcher: cuts and advances batches every `tick`, and forgets what is settled every
/// few minutes.
#[derive(Debug, Clone)]
pub struct Batcher {
    pub node: Arc<HosterNode>,
    pub tick: Duration,
    /// When it last forgot (unix seconds).
    pub forgot_at: i64,
}

const FORGET_EVERY_SECS: i64 = 300;

impl Role for Batcher {
    fn name(&self) -> &'static str {
        "batcher"
    }

    fn longest_quiet(&self) -> Duration {
        self.tick
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let now = super::now();
        let retry = |error: StoreError| StepError::Retry(error.into());
        self.node.cut(now).await.map_err(retry)?;
        self.node.advance(now).await.map_err(retry)?;
        if now - self.forgot_at >= FORGET_EVERY_SECS {
            self.node.forget_expired(now).await.map_err(retry)?;
            self.forgot_at = now;
        }
        Ok(self.tick)
    }
}

/// Why a decision could not be given.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Api(#[from] CallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A batch not yet answered, as stored.
#[derive(Debug)]
struct Pending {
    sequence: i64,
    cut_at: i64,
    receipts: String,
    witnessing: bool,
    witness: Option<String>,
    witness_signature: Option<String>,
    confirmed: Option<Vec<u8>>,
    attempts: i64,
}

fn event_of(code: u8) -> EventType {
    EventType::ALL
        .into_iter()
        .find(|event| event.code() == code)
        .unwrap_or(EventType::Impression)
}
