//! Growth: what a first sign-in brings (a referral code or link, or an affiliate code), and
//! the programs' scheduled work (referral bonuses, commission accrual, release and
//! clawback, resellers' markups), run as one background role.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::accounts::client_network::{ClientNetwork, ClientNetworks};
use crate::accounts::session::IssuedSession;
use crate::accounts::{self, AccountError, SignInTerms, User};
use crate::platform::worker::{Backoff, Leadership, Role, StepError};
use crate::programs::affiliates::{self, AffiliateError, Terms, commissions};
use crate::programs::codes;
use crate::programs::referrals::{self, ReferralError, Referrals, activity, bonuses};
use crate::programs::resellers::{self, ResellerError};

/// Referrals and affiliates, as the API and the role use them.
#[derive(Debug, Clone)]
pub struct Growth {
    pub referrals: Referrals,
    pub affiliates: Terms,
    /// Hashes of sign-up networks (IPv4 /24, IPv6 /64).
    pub networks: ClientNetworks,
}

/// Why a sign-in was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Referral(#[from] ReferralError),
    #[error(transparent)]
    Affiliate(#[from] AffiliateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Growth {
    /// The keyed hash of a sign-up's network; none for callers with no peer address.
    pub fn network_of(&self, peer: Option<std::net::IpAddr>) -> Option<ClientNetwork> {
        peer.map(|ip| self.networks.of(Some(ip)))
    }

    /// Signs a wallet in (see [`accounts::sign_in`]) and, on its first sign-in, records what
    /// it presented: an affiliate code (`AFF…`) attributes it to that affiliate, anything
    /// else is a referral code or link. A refused code refuses the sign-in, with nothing
    /// written; presenting one on a later sign-in is refused too.
    #[allow(clippy::too_many_arguments, reason = "one sign-in's inputs, each distinct")]
    pub async fn sign_in(
        &self,
        db: &PgPool,
        terms: SignInTerms<'_>,
        message: &str,
        signature: &str,
        presented: Option<&str>,
        network: Option<ClientNetwork>,
        now: OffsetDateTime,
    ) -> Result<(IssuedSession, User), SignUpError> {
        let mut tx = db.begin().await?;
        let signed = accounts::sign_in(&mut tx, terms, message, signature, now).await?;
        if let Some(network) = network {
            referrals::seen_from(&mut *tx, signed.user.id, network, now).await?;
        }
        if let Some(presented) = presented {
            // An affiliate code is `AFF` and 8 characters; a referral code is 8 (and may
            // begin with AFF too); a link's token has dots.
            if codes::normalize(presented, affiliates::CODE_PREFIX).is_some() {
                if !signed.first {
                    return Err(AffiliateError::NotFirstSignIn.into());
                }
                affiliates::attribute(
                    &mut tx,
                    &self.affiliates,
                    signed.user.id,
                    presented,
                    affiliates::Channel::SignIn,
                    now,
                )
                .await?;
            } else {
                let invitation = self.referrals.invitation(presented, now)?;
                if !signed.first {
                    return Err(ReferralError::NotFirstSignIn.into());
                }
                referrals::record(&mut tx, signed.user.id, &invitation, network, now).await?;
            }
        }
        tx.commit().await?;
        Ok((signed.issued, signed.user))
    }
}

/// What one pass of the programs role did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass {
    pub bonuses: bonuses::Recomputed,
    pub accrued: usize,
    pub clawed_back: usize,
    pub released: usize,
    /// Referees' moves folded into their activity.
    pub folded: u64,
    /// Resellers' markups posted, and taken back after adjustments.
    pub markups: usize,
    pub markups_clawed_back: usize,
}

/// Referrers whose bonuses one pass recomputes (a referrer with 10,000 referrals is assessed
/// in tens of milliseconds, so a pass stays within seconds).
const REFERRERS_PER_PASS: i64 = 100;

/// Why a pass stopped; the role retries it.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Affiliate(#[from] AffiliateError),
    #[error(transparent)]
    Reseller(#[from] ResellerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One pass: accrue commissions and resellers' markups on new billing, take back what
/// adjustments reversed, release what is due, fold the referees' new activity, and bring
/// the least recently recomputed referrers' bonuses in line.
pub async fn tick(db: &PgPool, chain_id: u64, growth: &Growth, now: OffsetDateTime) -> Result<Pass, PassError> {
    let accrued = commissions::accrue(db, chain_id, &growth.affiliates, now).await?;
    let markups = resellers::pricing::accrue(db, chain_id, now).await?;
    let markups_clawed_back = resellers::clawback::claw_back(db, chain_id, now).await?;
    let clawed_back = commissions::claw_back(db, chain_id, now).await?;
    let released = commissions::release_due(db, chain_id, &growth.affiliates, now).await?;
    let folded = activity::fold(db).await?;
    let bonuses = bonuses::recompute_due(db, chain_id, growth.affiliates.platform, now, REFERRERS_PER_PASS).await?;
    Ok(Pass {
        bonuses,
        accrued,
        clawed_back,
        released,
        folded,
        markups,
        markups_clawed_back,
    })
}

/// The programs role: [`tick`] every `interval` in the one process that holds its lock.
/// Accrual must run well within the epoch interval: a commission accrued after an epoch
/// paid the platform its whole share waits until the platform's later earnings repay it.
#[derive(Debug, Clone)]
pub struct Programs {
    pub db: PgPool,
    pub chain_id: u64,
    pub growth: Growth,
    pub interval: Duration,
}

const LOCK_KEY: i64 = 0x6164_6573_6772_6f77; // "adesgrow"

impl Role for Programs {
    fn name(&self) -> &'static str {
        "programs"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LOCK_KEY,
            poll: self.interval,
        })
    }

    fn longest_quiet(&self) -> Duration {
        self.interval.max(Duration::from_secs(60))
    }

    fn retry(&self) -> Backoff {
        Backoff::new(
            self.interval.min(Duration::from_secs(1)),
            self.interval.max(Duration::from_secs(30)),
        )
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let pass = tick(&self.db, self.chain_id, &self.growth, OffsetDateTime::now_utc())
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        metrics::counter!("adescrow_referral_bonuses_total").increment(pass.bonuses.awarded as u64);
        metrics::counter!("adescrow_referral_bonus_reversals_total").increment(pass.bonuses.reversed as u64);
        metrics::counter!("adescrow_affiliate_clawbacks_total").increment(pass.clawed_back as u64);
        metrics::counter!("adescrow_affiliate_releases_total").increment(pass.released as u64);
        metrics::counter!("adescrow_referral_activity_moves_total").increment(pass.folded);
        Ok(self.interval)
    }
}
