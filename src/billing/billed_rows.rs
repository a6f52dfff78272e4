//! Writing a judged batch's receipts: billed events with `COPY`, refused ones with their
//! reasons (nothing a node reports is dropped).

use alloy::primitives::Address;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::facts::frequency_key;
use super::{Candidate, Refusal, VerifiedBatch};
use crate::adserver::pricing::EventType;
use crate::money::Amount;

/// One receipt to write as billed.
pub(super) struct Billed<'a> {
    pub(super) candidate: &'a Candidate,
    /// What the advertiser pays: the ticket's price less any fee waived.
    pub(super) price: Amount,
    pub(super) shares: [Amount; 4],
    pub(super) viewer_payee: Option<Address>,
}

/// Writes the billed receipts with `COPY`, the cheapest way into Postgres. `false` when one
/// of them was billed meanwhile (the primary key refuses it, which aborts the transaction).
pub(super) async fn insert_billed(
    tx: &mut PgConnection,
    batch_id: i64,
    batch: &VerifiedBatch,
    billed: &[Billed<'_>],
) -> Result<bool, sqlx::Error> {
    if billed.is_empty() {
        return Ok(true);
    }
    // In ticket order: tickets are time-ordered, so consecutive rows go to the same few
    // pages at the end of the ticket index.
    let mut order: Vec<&Billed<'_>> = billed.iter().collect();
    order.sort_unstable_by_key(|entry| entry.candidate.ticket.id);
    let mut rows = String::with_capacity(billed.len() * 360);
    for entry in order {
        copy_row(&mut rows, batch_id, batch, entry).map_err(sqlx::Error::Encode)?;
    }
    let mut copy = tx
        .copy_in_raw(
            "COPY billed_events (ticket_id, event, campaign_id, ad_id, hoster_node_id, witness_node_id, price,
                                 occurred_at, batch_id, position, viewer_hash, frequency_key, order_ref, hoster_share,
                                 platform_share, witness_share, viewer_share, viewer_payee, placement_id) FROM STDIN",
        )
        .await?;
    copy.send(rows.as_bytes()).await?;
    match copy.finish().await {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("billed_events_pkey") => Ok(false),
        Err(error) => Err(error),
    }
}

/// One billed event as a line of `COPY`'s text format: tab-separated, `\N` for null.
/// Fails only on a receipt time that RFC 3339 cannot write (a year outside 0 to 9999).
fn copy_row(
    out: &mut String,
    batch_id: i64,
    batch: &VerifiedBatch,
    entry: &Billed<'_>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::fmt::Write as _;
    let candidate = entry.candidate;
    let receipt = &batch.receipts[candidate.position];
    let bytea = |out: &mut String, bytes: Option<&[u8]>| match bytes {
        // `\x` is bytea's hex form, with COPY's own escape of the backslash.
        Some(bytes) => {
            out.push_str("\\\\x");
            out.push_str(&hex::encode(bytes));
        }
        None => out.push_str("\\N"),
    };
    let witness = batch
        .witness_of(entry.candidate.position)
        .map_or_else(|| "\\N".to_owned(), |w| w.node.to_string());
    let at = receipt.at.format(&time::format_description::well_known::Rfc3339)?;
    write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
        candidate.ticket.id,
        receipt.event.label(),
        candidate.ticket.campaign_id,
        candidate.ticket.ad_id,
        batch.hoster.node,
        witness,
        entry.price,
        at,
        batch_id,
        candidate.position,
    )?;
    // The ticket's viewer hash, which the receipt's viewer matched.
    let viewer_hash = candidate.ticket.viewer;
    bytea(out, viewer_hash.as_ref().map(|h| h.as_slice()));
    match &viewer_hash {
        Some(hash) => write!(out, "\t{}\t", frequency_key(candidate.ticket.ad_id, hash))?,
        None => out.push_str("\t\\N\t"),
    }
    match &receipt.order_ref {
        Some(order) => {
            for c in order.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
        None => out.push_str("\\N"),
    }
    for share in entry.shares {
        write!(out, "\t{share}")?;
    }
    out.push('\t');
    bytea(out, entry.viewer_payee.as_ref().map(|p| p.as_slice()));
    match candidate.ticket.placement_id {
        Some(placement) => writeln!(out, "\t{placement}")?,
        None => out.push_str("\t\\N\n"),
    }
    Ok(())
}

pub(super) async fn insert_refused(
    tx: &mut PgConnection,
    batch_id: i64,
    receipts: &[super::batch::Receipt],
    refused: &[(usize, Option<Uuid>, Refusal)],
) -> Result<(), sqlx::Error> {
    if refused.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = refused.iter().map(|(p, _, _)| *p as i32).collect();
    let tickets: Vec<Option<Uuid>> = refused.iter().map(|(_, t, _)| *t).collect();
    let events: Vec<EventType> = refused.iter().map(|(p, _, _)| receipts[*p].event).collect();
    let times: Vec<OffsetDateTime> = refused.iter().map(|(p, _, _)| receipts[*p].at).collect();
    let reasons: Vec<Refusal> = refused.iter().map(|(_, _, r)| *r).collect();
    sqlx::query!(
        "INSERT INTO refused_receipts (batch_id, position, ticket_id, event, occurred_at, reason)
         SELECT $1, n, t, e, o, r
         FROM UNNEST($2::int[], $3::uuid[], $4::billable_event[], $5::timestamptz[], $6::refusal_reason[])
              AS u(n, t, e, o, r)",
        batch_id,
        &positions,
        &tickets as &[Option<Uuid>],
        &events as &[EventType],
        &times,
        &reasons as &[Refusal]
    )
    .execute(tx)
    .await?;
    Ok(())
}
