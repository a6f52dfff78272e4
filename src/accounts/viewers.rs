//! Pseudonymous viewer ids. A signed-in user gets one stable random id; hosters pass it with
//! decision requests and receipts. It tells the ad server whose on-chain consent applies
//! without telling anyone (hosters included) which wallet is browsing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sqlx::PgConnection;
use uuid::Uuid;

/// Marks linked ids, so they are told apart from the ids hosters make up for anonymous viewers.
pub const PREFIX: &str = "vw_";

/// The user's viewer id, created on first request.
pub async fn ensure(conn: &mut PgConnection, user_id: Uuid) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    sqlx::query!(
        "INSERT INTO viewer_ids (user_id, viewer_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        fresh
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!("SELECT viewer_id FROM viewer_ids WHERE user_id = $1", user_id)
        .fetch_one(conn)
        .await
}
