//! Served counts: how many times each ad was chosen for each node, kept in memory and
//! flushed to `served_counts` in 15-minute buckets. Kept apart from billed counts, which
//! only receipts produce.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const BUCKET_SECS: i64 = 15 * 60;

#[derive(Debug, Default)]
pub struct ServedCounter {
    counts: Mutex<HashMap<(Uuid, Uuid, i64), i64>>,
}

impl ServedCounter {
    pub fn record(&self, ad: Uuid, node: Uuid, now_secs: i64) {
        let bucket = now_secs - now_secs.rem_euclid(BUCKET_SECS);
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((ad, node, bucket))
            .or_default() += 1;
    }

    /// Adds what was counted since the last flush to the table. On failure the counts are
    /// kept for the next flush.
    pub async fn flush(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        let pending = std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(());
        }
        let mut ads = Vec::with_capacity(pending.len());
        let mut nodes = Vec::with_capacity(pending.len());
        let mut buckets = Vec::with_capacity(pending.len());
        let mut counts = Vec::with_capacity(pending.len());
        for ((ad, node, bucket), count) in &pending {
            ads.push(*ad);
            nodes.push(*node);
            buckets.push(OffsetDateTime::from_unix_timestamp(*bucket).unwrap_or(OffsetDateTime::UNIX_EPOCH));
            counts.push(*count);
        }
        // Ads or nodes deleted since they were served are skipped by the join.
        let result = sqlx::query!(
            "INSERT INTO served_counts (ad_id, hoster_node_id, bucket, decisions)
             SELECT t.ad, t.node, t.bucket, t.count
             FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bigint[]) AS t(ad, node, bucket, count)
             JOIN ads a ON a.id = t.ad JOIN nodes n ON n.id = t.node
             ON CONFLICT (ad_id, hoster_node_id, bucket)
             DO UPDATE SET decisions = served_counts.decisions + EXCLUDED.decisions",
            &ads,
            &nodes,
            &buckets,
            &counts
        )
        .execute(db)
        .await;
        if let Err(error) = result {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, count) in pending {
                *counts.entry(key).or_default() += count;
            }
            return Err(error);
        }
        Ok(())
    }
}
