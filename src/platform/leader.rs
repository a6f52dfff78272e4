//! One active instance across processes, for roles that must not run twice at once (the
//! scheduler, the relayer: see `worker::Leadership`). A Postgres session-level advisory
//! lock is held on a dedicated connection: if the process dies, its connection closes and
//! the lock is free.

use sqlx::{Connection, PgConnection, PgPool};

/// A held advisory lock, on a connection taken out of the pool for good: were it returned,
/// the pool would hand out a session that still holds the lock.
#[derive(Debug)]
pub struct Leader {
    conn: PgConnection,
    key: i64,
}

impl Leader {
    /// Takes the lock if nobody holds it.
    pub async fn try_acquire(db: &PgPool, key: i64) -> Result<Option<Leader>, sqlx::Error> {
        let mut conn = db.acquire().await?;
        let acquired = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "acquired!""#, key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(acquired.then(|| Leader {
            conn: conn.detach(),
            key,
        }))
    }

    /// Whether the lock's session is still alive, and so the lock still ours.
    pub async fn still_held(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }

    /// Gives the lock up now rather than when the connection closes.
    pub async fn release(mut self) {
        let _ = sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", self.key)
            .fetch_one(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
