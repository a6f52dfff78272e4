//! Idempotency keys, with Stripe's semantics: a client that sends `Idempotency-Key` with a
//! request that creates something may send the same request again (after a timeout or a
//! dropped connection) and get the first answer back instead of a second effect.
//!
//! - The header is optional; without it a request runs as it always does. A key is 1 to
//!   255 visible ASCII characters (a UUID is the usual choice); anything else is a 422
//!   naming the header.
//! - A key belongs to its caller (the authenticated user or node), the method and the
//!   route, so two callers' keys never meet. Anonymous requests are not recorded: every
//!   operation that takes a key refuses them anyway.
//! - The first request with a key is recorded as in flight (one `INSERT ... ON CONFLICT DO
//!   NOTHING`, so that of concurrent first requests exactly one runs), then runs; a success
//!   (2xx) is stored with its status, `Content-Type`, `Location` and body.
//! - The same key with the same request (method, path and body: the [`fingerprint`]) gets
//!   the stored answer byte for byte, marked `Idempotent-Replayed: true`. With a different
//!   request it is a 422; while the first is still running, a 409 with `Retry-After`.
//!   A replay runs no handler, so it checks no role again: the caller gets an answer it
//!   already had, and a credential that stopped working never reaches the stored answer.
//! - Only successes are stored. Every error answer (4xx, 5xx) releases the key: in this API
//!   an error means nothing was written (handlers check before they write and write in one
//!   transaction), so there is nothing a retry could duplicate, and a client may fix the
//!   request (or wait out a 409/429, or get the role a 403 named) and send it again under
//!   the same key. A request cut off by the timeout layer or a panic releases its key too.
//! - A record in flight for longer than the lock timeout belongs to a process that died
//!   (the request timeout ends every live one before that), and the next request with the
//!   key takes it over.
//! - Keys expire [`ApiArgs::idempotency_key_lifetime`] after first use; a key past it is a
//!   new request. The API's housekeeping deletes expired rows ([`sweep`]).
//!
//! The operations that take a key are those that create something or move a campaign's
//! status (and so its spending); `crate::http::idempotency::OPERATIONS` lists them and what is
//! left out. This module is the store; the HTTP layer lives beside that list.
//!
//! [`ApiArgs::idempotency_key_lifetime`]: crate::platform::config::ApiArgs::idempotency_key_lifetime

use std::time::Duration;

use axum::http::header::HeaderName;
use axum::http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The request header carrying the key.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotency-Key`, as documents and problem `field`s spell it.
pub const HEADER_NAME: &str = "Idempotency-Key";
/// How long past the request timeout a record may stay in flight before it is taken over.
/// The timeout layer ends every request by the request timeout (its key is released then),
/// so a record older than that belongs to a process that died; the slack covers the
/// record's own writes.
const LOCK_SLACK: Duration = Duration::from_secs(5);

/// A record in flight for longer than this is taken over by the next request with its key.
pub fn lock_timeout(request_timeout: Duration) -> Duration {
    request_timeout + LOCK_SLACK
}

/// A key as the client sent it: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

/// Why a header is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be 1 to 255 visible ASCII characters")]
    Malformed,
    #[error("must be sent once")]
    Repeated,
}

impl Key {
    pub const MAX_LEN: usize = 255;

    pub fn parse(value: &[u8]) -> Result<Self, KeyError> {
        let visible = |b: &u8| (b'!'..=b'~').contains(b);
        if value.is_empty() || value.len() > Self::MAX_LEN || !value.iter().all(visible) {
            return Err(KeyError::Malformed);
        }
        // Visible ASCII is UTF-8.
        Ok(Self(String::from_utf8_lossy(value).into_owned()))
    }

    /// The request's key, if it sent one.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, KeyError> {
        let mut values = headers.get_all(HEADER).into_iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(KeyError::Repeated);
        }
        Self::parse(value.as_bytes()).map(Some)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of what makes two requests the same one: method, path (with query) and body.
/// The request line's form (`METHOD SP path LF`) keeps the parts apart, as neither a method
/// nor a path holds a space or a line feed.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().into()
}

/// Whose key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    User(Uuid),
    Node(Uuid),
}

impl Caller {
    fn parts(self) -> (&'static str, Uuid) {
        match self {
            Self::User(id) => ("user", id),
            Self::Node(id) => ("node", id),
        }
    }
}

/// One key's record: its caller, method, route and the key itself.
#[derive(Debug, Clone)]
pub struct Scope {
    caller_kind: &'static str,
    caller_id: Uuid,
    method: String,
    route: String,
    key: Key,
}

impl Scope {
    /// The route this key was used on, as the router names it.
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn new(caller: Caller, method: &Method, route: &str, key: Key) -> Self {
        let (caller_kind, caller_id) = caller.parts();
        Self {
            caller_kind,
            caller_id,
            method: method.as_str().to_owned(),
            route: route.to_owned(),
            key,
        }
    }
}

/// A stored success, replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// What a request with a key does.
#[derive(Debug)]
pub enum Begin {
    /// Run it: this attempt owns the key.
    Run(Uuid),
    /// Answer with what the first request got.
    Replay(Answer),
    /// The first request with the key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// Settings of the mechanism.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub lifetime: Duration,
    pub lock_timeout: Duration,
}

/// Claims the key for a request with `fingerprint`, or says why not. Safe under any
/// concurrency: of the requests that race for a key, one gets [`Begin::Run`].
pub async fn begin(db: &PgPool, scope: &Scope, fingerprint: &[u8; 32], policy: Policy) -> Result<Begin, sqlx::Error> {
    let lifetime = policy.lifetime.as_secs_f64();
    let lock_timeout = policy.lock_timeout.as_secs_f64();
    // A row can vanish between the statements below (its request failed and released it);
    // each round then starts over. Three rounds: a key released twice in a row in that
    // window is contended enough to answer "in flight".
    for _ in 0..3 {
        let attempt = Uuid::new_v4();
        let inserted = sqlx::query!(
            "INSERT INTO idempotency_keys
                 (caller_kind, caller_id, method, route, key, fingerprint, attempt, locked_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + make_interval(secs => $8))
             ON CONFLICT DO NOTHING",
            scope.caller_kind,
            scope.caller_id,
            scope.method,
            scope.route,
            scope.key.as_str(),
            &fingerprint[..],
            attempt,
            lifetime,
        )
        .execute(db)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Begin::Run(attempt));
        }
        let Some(row) = sqlx::query!(
            r#"SELECT fingerprint, attempt, status, content_type, location, body,
                      expires_at <= now() AS "expired!",
                      status IS NULL AND locked_at < now() - make_interval(secs => $6) AS "stale!"
               FROM idempotency_keys
               WHERE caller_kind = $1 AND caller_id = $2 AND method = $3 AND route = $4 AND key = $5"#,
            scope.caller_kind,
            scope.caller_id,
            scope.method,
            scope.route,
            scope.key.as_str(),
            lock_timeout,
        )
        .fetch_optional(db)
        .await?
        else {
            continue;
        };
        // Past its lifetime a key is new, whatever it was used for.
        if !row.expired && row.fingerprint != fingerprint[..] {
            return Ok(Begin::Mismatch);
        }
        if !row.expired
            && let (Some(status), Some(body)) = (row.status, row.body)
        {
            return Ok(Begin::Replay(Answer {
                status: status as u16,
                content_type: row.content_type,
                location: row.location,
                body,
            }));
        }
        if !(row.expired || row.stale) {
            return Ok(Begin::InFlight);
        }
        // Take over an expired record, or one whose process died. The condition is checked
        // again on the row as it is when the update locks it, so that of two requests taking
        // over, one wins, and an answer stored meanwhile is never wiped.
        let taken = sqlx::query!(
            "UPDATE idempotency_keys
             SET fingerprint = $6, attempt = $7, locked_at = now(),
                 expires_at = CASE WHEN expires_at <= now()
                                   THEN now() + make_interval(secs => $9) ELSE expires_at END,
                 status = NULL, content_type = NULL, location = NULL, body = NULL, completed_at = NULL
             WHERE caller_kind = $1 AND caller_id = $2 AND method = $3 AND route = $4 AND key = $5
               AND attempt = $8
               AND (expires_at <= now()
                    OR (status IS NULL AND locked_at < now() - make_interval(secs => $10)))",
            scope.caller_kind,
            scope.caller_id,
            scope.method,
            scope.route,
            scope.key.as_str(),
            &fingerprint[..],
            attempt,
            row.attempt,
            lifetime,
            lock_timeout,
        )
        .execute(db)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Begin::Run(attempt));
        }
    }
    Ok(Begin::InFlight)
}

/// Stores the answer of the attempt that owns the key. False if the attempt lost the key
/// meanwhile (it ran past the lock timeout and another took over).
pub async fn complete(db: &PgPool, scope: &Scope, attempt: Uuid, answer: &Answer) -> Result<bool, sqlx::Error> {
    let stored = sqlx::query!(
        "UPDATE idempotency_keys
         SET status = $7, content_type = $8, location = $9, body = $10, completed_at = now()
         WHERE caller_kind = $1 AND caller_id = $2 AND method = $3 AND route = $4 AND key = $5
           AND attempt = $6 AND status IS NULL",
        scope.caller_kind,
        scope.caller_id,
        scope.method,
        scope.route,
        scope.key.as_str(),
        attempt,
        answer.status as i16,
        answer.content_type,
        answer.location,
        answer.body,
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Gives the key up, so that the client may send it again: the attempt that owns it ended
/// without a success.
pub async fn release(db: &PgPool, scope: &Scope, attempt: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM idempotency_keys
         WHERE caller_kind = $1 AND caller_id = $2 AND method = $3 AND route = $4 AND key = $5
           AND attempt = $6 AND status IS NULL",
        scope.caller_kind,
        scope.caller_id,
        scope.method,
        scope.route,
        scope.key.as_str(),
        attempt,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the records of expired keys; returns how many.
pub async fn sweep(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at <= now()")
        .execute(conn)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(Key::parse(b"a").is_ok());
        assert!(Key::parse(&[b'~'; 255]).is_ok());
        assert!(Key::parse(b"0f6e0c8a-6d0e-4bb3-9f0e-6a4b1c2d3e4f").is_ok());
        for bad in [
            &b""[..],
            &[b'a'; 256],
            b"with space",
            b"tab\there",
            b"caf\xc3\xa9",
            b"\x7f",
        ] {
            assert_eq!(Key::parse(bad), Err(KeyError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_repeated_header_is_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(Key::from_headers(&headers), Ok(None));
        headers.append(HEADER, HeaderValue::from_static("one"));
        assert_eq!(Key::from_headers(&headers), Ok(Some(Key("one".into()))));
        headers.append(HEADER, HeaderValue::from_static("one"));
        assert_eq!(Key::from_headers(&headers), Err(KeyError::Repeated));
    }

    #[test]
    fn fingerprints_keep_method_path_and_body_apart() {
        let base = fingerprint(&Method::POST, "/v1/brands", b"{}");
        assert_eq!(base, fingerprint(&Method::POST, "/v1/brands", b"{}"));
        assert_ne!(base, fingerprint(&Method::PUT, "/v1/brands", b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/v1/brand", b"s{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/v1/brands", b"{ }"));
    }
}
