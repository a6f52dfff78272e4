//! Referral rewards: every user has a code and links to share; a wallet signing in for the
//! first time with one records who referred it, once and for good. Whether a referral
//! qualifies is a pure function of authoritative state at a time under a rule version
//! ([`assess`]); for every block of qualified referrals the referrer earns a bonus, a debit
//! of the referral program's budget, and a bonus whose referrals stop qualifying is reversed
//! by a posting ([`bonuses`]).

pub mod activity;
pub mod assess;
pub mod bonuses;
pub mod rules;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::client_network::ClientNetwork;
use crate::money::holds::HoldError;
use crate::money::ledger::LedgerError;
use crate::programs::codes;

type HmacSha256 = Hmac<Sha256>;

/// Why a referral operation was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    #[error("no such referral code")]
    UnknownCode,
    #[error("this referral link is not valid")]
    BadLink,
    #[error("this referral link expired at {0}")]
    LinkExpired(OffsetDateTime),
    #[error("this referral code has been used as often as its owner allows")]
    Exhausted,
    #[error("this referral code's owner is disabled, so it does not count")]
    OwnerDisabled,
    #[error("nobody refers themselves")]
    SelfReferral,
    #[error("this wallet has signed in before: a referral counts only at the first sign-in")]
    NotFirstSignIn,
    #[error("a use limit cannot be below the {uses} sign-ups the code has already brought")]
    LimitBelowUses { uses: i32 },
    #[error("{0}")]
    Rules(&'static str),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The program's fixed terms (the rules that change are versioned in the database).
#[derive(Clone)]
pub struct Referrals {
    links: HmacSha256,
    link_ttl: Duration,
    public_url: Url,
}

impl std::fmt::Debug for Referrals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Referrals")
            .field("link_ttl", &self.link_ttl)
            .finish_non_exhaustive()
    }
}

/// A user's code and a link to share.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReferralCode)]
#[serde(rename_all = "camelCase")]
pub struct MyCode {
    /// Type it at sign-in, in any case.
    pub code: String,
    /// How many sign-ups it may bring; none: no limit.
    pub use_limit: Option<i32>,
    pub uses: i32,
    /// A link that signs up with the code until it expires.
    pub link: String,
    #[serde(with = "time::serde::rfc3339")]
    pub link_expires_at: OffsetDateTime,
}

/// Who invited a wallet signing in, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub code: String,
    pub channel: Channel,
}

/// How a referral arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[schema(as = ReferralChannel)]
#[sqlx(type_name = "referral_channel", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Code,
    Link,
}

impl Referrals {
    /// Links are tagged under a key derived from the session secret with its own label.
    pub fn new(session_secret: &[u8], link_ttl: Duration, public_url: Url) -> Self {
        let key = Sha256::new()
            .chain_update(b"adescrow referral links\0")
            .chain_update(session_secret)
            .finalize();
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104)")]
        let links = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        Self {
            links,
            link_ttl,
            public_url,
        }
    }

    fn tag(&self, code: &str, expires: i64) -> String {
        let mut mac = self.links.clone();
        mac.update(format!("{code}.{expires}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A link token for `code`, valid until `expires` (Unix seconds): `CODE.EXPIRES.TAG`.
    fn link_token(&self, code: &str, expires: i64) -> String {
        format!("{code}.{expires}.{}", self.tag(code, expires))
    }

    /// What a wallet signing in presented: a code as typed, or a link token.
    pub fn invitation(&self, presented: &str, now: OffsetDateTime) -> Result<Invitation, ReferralError> {
        let mut parts = presented.trim().split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(code), None, None, None) => Ok(Invitation {
                code: codes::normalize(code, "").ok_or(ReferralError::UnknownCode)?,
                channel: Channel::Code,
            }),
            (Some(code), Some(expires), Some(tag), None) => {
                let expires: i64 = expires.parse().map_err(|_| ReferralError::BadLink)?;
                let code = codes::normalize(code, "").ok_or(ReferralError::BadLink)?;
                // The tag is compared in constant time by the MAC itself.
                let mut mac = self.links.clone();
                mac.update(format!("{code}.{expires}").as_bytes());
                let tag = hex::decode(tag).map_err(|_| ReferralError::BadLink)?;
                if tag.len() != 16 {
                    return Err(ReferralError::BadLink);
                }
                mac.verify_truncated_left(&tag).map_err(|_| ReferralError::BadLink)?;
                let expiry = OffsetDateTime::from_unix_timestamp(expires).map_err(|_| ReferralError::BadLink)?;
                if expiry <= now {
                    return Err(ReferralError::LinkExpired(expiry));
                }
                Ok(Invitation {
                    code,
                    channel: Channel::Link,
                })
            }
            _ => Err(ReferralError::BadLink),
        }
    }

    /// `user`'s code (made on first ask) with a fresh link.
    pub async fn my_code(
        &self,
        conn: &mut PgConnection,
        user: Uuid,
        now: OffsetDateTime,
    ) -> Result<MyCode, ReferralError> {
        let row = loop {
            // A fresh code may collide with one taken (about one in 10^11): draw again.
            let inserted = sqlx::query!(
                "INSERT INTO referral_codes (user_id, code) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                user,
                codes::generate("")
            )
            .execute(&mut *conn)
            .await?;
            let row = sqlx::query!(
                "SELECT code, use_limit, uses FROM referral_codes WHERE user_id = $1",
                user
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = row {
                break row;
            }
            debug_assert_eq!(inserted.rows_affected(), 0);
        };
        // Whole seconds, as the token carries it.
        let expires = (now + self.link_ttl)
            .replace_nanosecond(0)
            .unwrap_or(now + self.link_ttl);
        let token = self.link_token(&row.code, expires.unix_timestamp());
        let mut link = self.public_url.clone();
        link.query_pairs_mut().append_pair("ref", &token);
        Ok(MyCode {
            code: row.code,
            use_limit: row.use_limit,
            uses: row.uses,
            link: link.to_string(),
            link_expires_at: expires,
        })
    }

    /// Sets how many sign-ups `user`'s code may bring (none: no limit).
    pub async fn set_limit(
        &self,
        conn: &mut PgConnection,
        user: Uuid,
        limit: Option<i32>,
        now: OffsetDateTime,
    ) -> Result<MyCode, ReferralError> {
        self.my_code(conn, user, now).await?;
        let uses = sqlx::query_scalar!(
            "UPDATE referral_codes SET use_limit = $2 WHERE user_id = $1 AND ($2::int IS NULL OR uses <= $2)
             RETURNING uses",
            user,
            limit
        )
        .fetch_optional(&mut *conn)
        .await?;
        if uses.is_none() {
            let uses = sqlx::query_scalar!("SELECT uses FROM referral_codes WHERE user_id = $1", user)
                .fetch_one(&mut *conn)
                .await?;
            return Err(ReferralError::LimitBelowUses { uses });
        }
        self.my_code(conn, user, now).await
    }
}

/// Records who referred `referee` (signing in for the first time, in the caller's
/// transaction): the code's use is counted by one conditional update, so a limit is never
/// passed however many sign up at once.
pub async fn record(
    conn: &mut PgConnection,
    referee: Uuid,
    invitation: &Invitation,
    network: Option<ClientNetwork>,
    now: OffsetDateTime,
) -> Result<Uuid, ReferralError> {
    let code = sqlx::query!(
        r#"SELECT c.user_id, (u.disabled_at IS NOT NULL) AS "disabled!" FROM referral_codes c JOIN users u ON u.id = c.user_id
           WHERE c.code = $1"#,
        invitation.code
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ReferralError::UnknownCode)?;
    if code.user_id == referee {
        return Err(ReferralError::SelfReferral);
    }
    if code.disabled {
        return Err(ReferralError::OwnerDisabled);
    }
    let counted = sqlx::query!(
        "UPDATE referral_codes SET uses = uses + 1 WHERE code = $1 AND (use_limit IS NULL OR uses < use_limit)",
        invitation.code
    )
    .execute(&mut *conn)
    .await?;
    if counted.rows_affected() == 0 {
        return Err(ReferralError::Exhausted);
    }
    let inserted = sqlx::query!(
        "INSERT INTO referrals (referee_id, referrer_id, channel, network, referred_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        referee,
        code.user_id,
        invitation.channel as Channel,
        network.as_ref().map(|n| n.as_bytes().as_slice()),
        now
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ReferralError::NotFirstSignIn);
    }
    Ok(code.user_id)
}

/// Notes that `user` signed in from `network` (a keyed hash of its /24 or /64).
pub async fn seen_from(
    db: impl PgExecutor<'_>,
    user: Uuid,
    network: ClientNetwork,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sign_in_networks (user_id, network, first_seen, last_seen) VALUES ($1, $2, $3, $3)
         ON CONFLICT (user_id, network) DO UPDATE SET last_seen = greatest(sign_in_networks.last_seen, EXCLUDED.last_seen)",
        user,
        network.as_bytes().as_slice(),
        now
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrals() -> Referrals {
        Referrals::new(
            b"secret",
            Duration::from_secs(3600),
            "http://localhost:8080/".parse().unwrap(),
        )
    }

    #[test]
    fn a_link_carries_its_code_until_it_expires() {
        let referrals = referrals();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let token = referrals.link_token("K7M2QRST", now.unix_timestamp() + 60);
        let invitation = referrals
            .invitation(&token.replacen("K7M2QRST", "k7m2qrst", 1), now)
            .unwrap();
        assert_eq!(
            (invitation.code.as_str(), invitation.channel),
            ("K7M2QRST", Channel::Link)
        );
        let later = now + time::Duration::seconds(61);
        assert!(matches!(
            referrals.invitation(&token, later),
            Err(ReferralError::LinkExpired(_))
        ));
    }

    #[test]
    fn a_forged_or_altered_link_is_refused() {
        let referrals = referrals();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let expires = now.unix_timestamp() + 60;
        let token = referrals.link_token("K7M2QRST", expires);
        let other = token.replacen("K7M2QRST", "K7M2QRSV", 1);
        let longer = token.replacen(&expires.to_string(), &(expires + 3600).to_string(), 1);
        let forged = Referrals::new(b"other", Duration::from_secs(60), referrals.public_url.clone())
            .link_token("K7M2QRST", expires);
        for bad in [other, longer, forged, format!("{token}.x"), "K7M2QRST.1.".to_owned()] {
            assert!(
                matches!(referrals.invitation(&bad, now), Err(ReferralError::BadLink)),
                "{bad}"
            );
        }
        assert!(matches!(
            referrals.invitation("K7M2QRS0", now),
            Err(ReferralError::UnknownCode)
        ));
    }
}
