//! Boards ranked in memory. A board of a million subjects is read from Postgres once (about
//! a second) and kept sorted, with each subject's position, so a page is a slice and a
//! subject's rank a hash lookup. An open board is refreshed in the background once its
//! copy is older than the refresh interval, and served from the older copy meanwhile: ranks
//! lag the ledger by at most that interval (a zero interval reads every board fresh, for
//! tests). A frozen board never changes and is kept as is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, keccak256};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::Board;
use super::store;
use crate::money::Amount;

/// How many boards are kept in memory at once; the least recently loaded goes first.
const MAX_BOARDS: usize = 64;

/// One line of a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Competition rank: equal scores share it, and the next rank skips.
    pub rank: u64,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    pub subject: Address,
    pub score: Amount,
}

/// What froze an ended board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Frozen {
    /// keccak256 of each entry's `subject (20 bytes) || score (32 bytes, big-endian)` in
    /// rank order: anyone holding the entries can check it.
    #[schema(value_type = String)]
    pub hash: B256,
    pub entries: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub frozen_at: OffsetDateTime,
}

/// A board's subjects in rank order.
#[derive(Debug, Default)]
pub struct Ranked {
    /// By score (highest first), then address (lowest first).
    entries: Vec<(u128, Address)>,
    positions: HashMap<Address, usize>,
    pub frozen: Option<Frozen>,
}

impl Ranked {
    pub fn new(mut scores: Vec<(Address, u128)>, frozen: Option<Frozen>) -> Self {
        scores.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let entries: Vec<(u128, Address)> = scores.into_iter().map(|(subject, score)| (score, subject)).collect();
        let positions = entries
            .iter()
            .enumerate()
            .map(|(i, (_, subject))| (*subject, i))
            .collect();
        Self {
            entries,
            positions,
            frozen,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, i: usize) -> Entry {
        let (score, subject) = self.entries[i];
        // Every entry before the first of this score has a higher one.
        let higher = self.entries.partition_point(|(other, _)| *other > score);
        Entry {
            rank: higher as u64 + 1,
            subject,
            score: Amount(score),
        }
    }

    /// Entries `offset..offset + limit`.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<Entry> {
        let end = offset.saturating_add(limit).min(self.entries.len());
        (offset.min(end)..end).map(|i| self.entry(i)).collect()
    }

    /// A subject's entry, and up to `neighbours` entries on each side of it.
    pub fn around(&self, subject: Address, neighbours: usize) -> Option<(Entry, Vec<Entry>)> {
        let i = *self.positions.get(&subject)?;
        let from = i.saturating_sub(neighbours);
        Some((self.entry(i), self.page(from, neighbours * 2 + 1)))
    }

    /// The hash a frozen board records (see [`Frozen::hash`]).
    pub fn hash(&self) -> B256 {
        let mut packed = Vec::with_capacity(self.entries.len() * 52);
        for (score, subject) in &self.entries {
            packed.extend_from_slice(subject.as_slice());
            packed.extend_from_slice(&[0u8; 16]);
            packed.extend_from_slice(&score.to_be_bytes());
        }
        keccak256(packed)
    }
}

struct Slot {
    ranked: Arc<Ranked>,
    loaded: Instant,
    refreshing: bool,
}

/// The boards in memory, shared by the API's requests.
pub struct Rankings {
    db: PgPool,
    refresh: Duration,
    boards: Arc<Mutex<HashMap<Board, Slot>>>,
}

impl std::fmt::Debug for Rankings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rankings")
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl Rankings {
    pub fn new(db: PgPool, refresh: Duration) -> Self {
        Self {
            db,
            refresh,
            boards: Arc::default(),
        }
    }

    /// The board ranked: from memory when held (starting a background refresh of an open
    /// board whose copy is stale), else loaded now.
    pub async fn get(&self, board: &Board) -> Result<Arc<Ranked>, sqlx::Error> {
        if !self.refresh.is_zero() {
            let mut boards = self.boards.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = boards.get_mut(board) {
                let stale = slot.ranked.frozen.is_none() && slot.loaded.elapsed() >= self.refresh;
                if stale && !slot.refreshing {
                    slot.refreshing = true;
                    let (db, boards, board) = (self.db.clone(), self.boards.clone(), board.clone());
                    tokio::spawn(async move {
                        let loaded = store::load(&db, &board).await;
                        let mut boards = boards.lock().unwrap_or_else(PoisonError::into_inner);
                        match loaded {
                            Ok(ranked) => {
                                boards.insert(
                                    board,
                                    Slot {
                                        ranked: Arc::new(ranked),
                                        loaded: Instant::now(),
                                        refreshing: false,
                                    },
                                );
                            }
                            Err(error) => {
                                tracing::warn!(%error, "could not refresh a leaderboard; serving the older copy");
                                if let Some(slot) = boards.get_mut(&board) {
                                    slot.refreshing = false;
                                }
                            }
                        }
                    });
                }
                return Ok(slot.ranked.clone());
            }
        }
        let ranked = Arc::new(store::load(&self.db, board).await?);
        let mut boards = self.boards.lock().unwrap_or_else(PoisonError::into_inner);
        let full = boards.len() >= MAX_BOARDS;
        if let Some(oldest) = boards
            .iter()
            .filter(|_| full)
            .min_by_key(|(_, slot)| slot.loaded)
            .map(|(key, _)| key.clone())
        {
            boards.remove(&oldest);
        }
        boards.insert(
            board.clone(),
            Slot {
                ranked: ranked.clone(),
                loaded: Instant::now(),
                refreshing: false,
            },
        );
        Ok(ranked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    #[test]
    fn ties_share_a_rank_in_address_order_and_the_next_rank_skips() {
        let ranked = Ranked::new(
            vec![(subject(3), 50), (subject(1), 70), (subject(2), 50), (subject(4), 10)],
            None,
        );
        let page = ranked.page(0, 10);
        let ranks: Vec<(u64, Address)> = page.iter().map(|e| (e.rank, e.subject)).collect();
        assert_eq!(
            ranks,
            [(1, subject(1)), (2, subject(2)), (2, subject(3)), (4, subject(4))]
        );
        let (me, around) = ranked.around(subject(3), 1).unwrap();
        assert_eq!((me.rank, me.score), (2, Amount(50)));
        assert_eq!(
            around.iter().map(|e| e.subject).collect::<Vec<_>>(),
            [subject(2), subject(3), subject(4)]
        );
        assert_eq!(ranked.around(subject(9), 1), None);
        assert!(ranked.page(4, 10).is_empty(), "past the end");
    }

    #[test]
    fn the_hash_covers_order_and_scores() {
        let a = Ranked::new(vec![(subject(1), 2), (subject(2), 1)], None);
        let b = Ranked::new(vec![(subject(2), 1), (subject(1), 2)], None);
        let c = Ranked::new(vec![(subject(1), 2), (subject(2), 2)], None);
        assert_eq!(a.hash(), b.hash(), "the same ranking, however it was read");
        assert_ne!(a.hash(), c.hash());
    }
}
