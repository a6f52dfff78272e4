//! Where each program's pass over the ledger has reached: a named position in
//! `program_cursors`, locked for the pass's transaction (so two passes never fold or accrue
//! the same postings) and moved in that transaction (so a pass that dies is redone whole).

use sqlx::PgConnection;

/// Locks cursor `name` for the caller's transaction and returns its position.
pub async fn lock(conn: &mut PgConnection, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!("SELECT position FROM program_cursors WHERE name = $1 FOR UPDATE", name)
        .fetch_one(conn)
        .await
}

/// The last of the next `size` receipt-batch postings after `after` and up to `watermark`
/// (the committed watermark: a batch still being billed has a lower id than one billed after
/// it, and a cursor must not pass it); none when there are none.
pub async fn receipt_page_end(
    conn: &mut PgConnection,
    after: i64,
    watermark: i64,
    size: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT max(id) FROM (SELECT id FROM ledger_postings WHERE id > $1 AND id <= $3 AND source = 'receipt_batch'
                              ORDER BY id LIMIT $2) page",
        after,
        size,
        watermark
    )
    .fetch_one(conn)
    .await
}

/// Moves cursor `name` to `position`, in the transaction that locked it.
pub async fn advance(conn: &mut PgConnection, name: &str, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE program_cursors SET position = $2 WHERE name = $1",
        name,
        position
    )
    .execute(conn)
    .await?;
    Ok(())
}
