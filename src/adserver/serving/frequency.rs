//! Frequency caps: how often one viewer has been shown, or clicked, one ad in the last hour.
//!
//! Counted in memory so that a decision touches no database: a decision reserves an
//! impression slot when it picks an ad, and billing records clicks. The counts are this
//! process's view; billing re-checks caps against billed events, which is the hard limit.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::adserver::campaigns::FrequencyCaps;

const WINDOW_SECS: i64 = 3600;
const SHARDS: usize = 64;

type Shard = Mutex<HashMap<(u64, Uuid), Seen>>;

#[derive(Debug, Default)]
struct Seen {
    /// Unix seconds of recent impressions and clicks, oldest first.
    impressions: Vec<i64>,
    clicks: Vec<i64>,
}

impl Seen {
    fn forget_before(&mut self, cutoff: i64) {
        self.impressions.retain(|t| *t > cutoff);
        self.clicks.retain(|t| *t > cutoff);
    }
}

/// Per-(viewer, ad) counts of the last hour, sharded to keep lock contention low.
#[derive(Debug)]
pub struct FrequencyCounter {
    hasher: RandomState,
    shards: Vec<Shard>,
}

impl Default for FrequencyCounter {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// A shard's counts. Each update leaves them whole, so a panic while one was held (which
/// poisons the lock) leaves nothing half-written.
fn lock(shard: &Shard) -> MutexGuard<'_, HashMap<(u64, Uuid), Seen>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FrequencyCounter {
    fn shard(&self, viewer: &str, ad: Uuid) -> (&Shard, (u64, Uuid)) {
        let key = self.hasher.hash_one(viewer);
        (&self.shards[(key as usize ^ ad.as_u128() as usize) % SHARDS], (key, ad))
    }

    /// Takes an impression slot for this viewer and ad if both caps allow one more.
    pub fn try_reserve(&self, viewer: &str, ad: Uuid, caps: FrequencyCaps, now: i64) -> bool {
        let (shard, key) = self.shard(viewer, ad);
        let mut map = lock(shard);
        let seen = map.entry(key).or_default();
        seen.forget_before(now - WINDOW_SECS);
        let allowed = seen.impressions.len() < caps.impressions_per_hour as usize
            && seen.clicks.len() < caps.clicks_per_hour as usize;
        if allowed {
            seen.impressions.push(now);
        }
        allowed
    }

    /// Counts a click; once a viewer reaches the click cap the ad is not shown to them again
    /// within the hour.
    pub fn record_click(&self, viewer: &str, ad: Uuid, now: i64) {
        let (shard, key) = self.shard(viewer, ad);
        let mut map = lock(shard);
        map.entry(key).or_default().clicks.push(now);
    }

    /// Drops what is older than the window, so memory follows the last hour's traffic.
    pub fn forget_old(&self, now: i64) {
        for shard in &self.shards {
            let mut map = lock(shard);
            map.retain(|_, seen| {
                seen.forget_before(now - WINDOW_SECS);
                !seen.impressions.is_empty() || !seen.clicks.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_impressions_per_viewer_and_ad_within_the_hour() {
        let counter = FrequencyCounter::default();
        let caps = FrequencyCaps::default();
        let (ad, other_ad) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            assert!(counter.try_reserve("alice", ad, caps, 1_000));
        }
        assert!(!counter.try_reserve("alice", ad, caps, 1_000), "fourth within the hour");
        assert!(counter.try_reserve("bob", ad, caps, 1_000), "other viewer");
        assert!(counter.try_reserve("alice", other_ad, caps, 1_000), "other ad");
        assert!(
            counter.try_reserve("alice", ad, caps, 1_000 + WINDOW_SECS),
            "an hour later"
        );
    }

    #[test]
    fn a_click_at_the_cap_stops_the_ad_for_that_viewer() {
        let counter = FrequencyCounter::default();
        let caps = FrequencyCaps::default();
        let ad = Uuid::new_v4();
        assert!(counter.try_reserve("alice", ad, caps, 0));
        counter.record_click("alice", ad, 10);
        assert!(!counter.try_reserve("alice", ad, caps, 20));
        counter.forget_old(10 + WINDOW_SECS);
        assert!(counter.try_reserve("alice", ad, caps, 10 + WINDOW_SECS));
    }
}
