//! Whether a referral qualifies: [`assess`], a pure function of the facts about it at a time
//! under a rule version, and [`facts`], which reads those facts for every referral of a
//! referrer from authoritative state (users, sign-in networks, and the referees' activity as
//! folded from the ledger and billing adjustments).

use std::collections::{HashMap, HashSet};

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Channel;
use super::rules::Rules;

/// What is known about one referral, as of a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub referee: Uuid,
    pub referee_address: Address,
    pub channel: Channel,
    pub referred_at: OffsetDateTime,
    pub account_created_at: OffsetDateTime,
    /// Disabled by an admin (as of the time).
    pub disabled: bool,
    /// The sign-up came with a network hash.
    pub has_network: bool,
    /// The referrer signed in from the referee's sign-up network within the rules' window.
    pub referrer_shared_network: bool,
    /// An earlier referee of the same referrer signed up from the same network.
    pub network_taken: bool,
    /// When the referee first billed or earned enough, in a token the rules name, provided
    /// it still has (net of reversed receipts).
    pub qualifying_since: Option<OffsetDateTime>,
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[schema(as = ReferralStatus)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Qualified,
    /// May still qualify.
    Pending,
    /// Does not count, whatever happens later.
    Disqualified,
}

/// Why a referral does not qualify (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[schema(as = ReferralReason)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The referee's account is disabled.
    RefereeDisabled,
    /// The sign-up came with no address hash, and the rules require one.
    NoNetwork,
    /// The referee signed up from a network its referrer used within the window.
    ReferrerNetwork,
    /// An earlier referee signed up from the same network: only the first counts.
    DuplicateNetwork,
    /// The referee has not billed or earned enough yet.
    NoQualifyingActivity,
    /// The account or the qualifying activity is younger than the cooldown.
    CoolingDown,
}

impl Reason {
    pub fn status(self) -> Status {
        match self {
            Self::RefereeDisabled | Self::NoNetwork | Self::ReferrerNetwork | Self::DuplicateNetwork => {
                Status::Disqualified
            }
            Self::NoQualifyingActivity | Self::CoolingDown => Status::Pending,
        }
    }
}

/// Assesses one referral at `at` under `rules`: `Ok` when it qualifies, else the first
/// reason it does not, in the order of the variants.
pub fn assess(facts: &Facts, rules: &Rules, at: OffsetDateTime) -> Result<(), Reason> {
    if facts.disabled {
        return Err(Reason::RefereeDisabled);
    }
    if rules.require_network && !facts.has_network {
        return Err(Reason::NoNetwork);
    }
    if facts.referrer_shared_network {
        return Err(Reason::ReferrerNetwork);
    }
    if facts.network_taken {
        return Err(Reason::DuplicateNetwork);
    }
    let Some(since) = facts.qualifying_since else {
        return Err(Reason::NoQualifyingActivity);
    };
    // Old enough means at least the cooldown old: the boundary itself qualifies.
    let old_enough = at - rules.cooldown();
    if facts.account_created_at > old_enough || since > old_enough {
        return Err(Reason::CoolingDown);
    }
    Ok(())
}

/// The facts about every referral `referrer` had made by `at`, oldest first.
///
/// Activity comes from `referral_activity`, the referees' moves folded from the ledger
/// ([`super::activity::fold`]): a referee qualifies in a token and kind while its running
/// total there reaches the rule, since the first move that brought it there. Each active
/// referee costs a row of totals and, where a rule was ever reached, one probe for that first
/// move (plus one for its total as of `at`, only when `at` is before its latest move). The
/// network facts are worked out here from the referrals in order and the referrer's few
/// sign-in networks, rather than by sorting or probing per referral in SQL.
pub async fn facts(
    conn: &mut PgConnection,
    referrer: Uuid,
    rules: &Rules,
    at: OffsetDateTime,
) -> Result<Vec<Facts>, sqlx::Error> {
    // The statement's cost estimate (its probes) passes Postgres' JIT threshold, but
    // compiling it would take longer than running it.
    let mut tx = conn.begin().await?;
    sqlx::query!("SET LOCAL jit = off").execute(&mut *tx).await?;
    let mut rows = sqlx::query!(
        r#"WITH r AS (
               SELECT r.referee_id, r.channel, r.referred_at, r.network, u.address, u.created_at, u.disabled_at
               FROM referrals r JOIN users u ON u.id = r.referee_id
               WHERE r.referrer_id = $1 AND r.referred_at <= $3),
           reached AS (
               SELECT t.referee_id, t.token, t.kind, n.needed,
                      CASE WHEN t.latest_at <= $3 THEN t.total
                           ELSE (SELECT a.total FROM referral_activity a
                                 WHERE (a.referee_id, a.token, a.kind) = (t.referee_id, t.token, t.kind) AND a.at <= $3
                                 ORDER BY a.seq DESC LIMIT 1) END AS total
               FROM r JOIN referral_activity_totals t ON t.referee_id = r.referee_id
               JOIN referral_rule_tokens k ON k.version = $2 AND k.token = t.token
               CROSS JOIN LATERAL (SELECT CASE t.kind WHEN 'billed' THEN k.min_billed ELSE k.min_earned END) n(needed)
               WHERE t.high >= n.needed),
           activity AS (
               SELECT x.referee_id, min(f.at) AS since
               FROM reached x
               CROSS JOIN LATERAL (SELECT a.at FROM referral_activity a
                                   WHERE (a.referee_id, a.token, a.kind) = (x.referee_id, x.token, x.kind)
                                     AND a.high >= x.needed
                                   ORDER BY a.high, a.seq LIMIT 1) f
               WHERE x.total >= x.needed AND f.at <= $3
               GROUP BY x.referee_id)
           SELECT r.referee_id AS "referee_id!", r.channel AS "channel!: Channel", r.address AS "address!: SqlAddress",
                  r.referred_at AS "referred_at!", r.created_at AS "created_at!",
                  (r.disabled_at IS NOT NULL AND r.disabled_at <= $3) AS "disabled!",
                  r.network, a.since AS "since?"
           FROM r LEFT JOIN activity a ON a.referee_id = r.referee_id"#,
        referrer,
        rules.version,
        at
    )
    .fetch_all(&mut *tx)
    .await?;
    // Oldest first (sorting here is cheaper than in the statement's plan).
    rows.sort_unstable_by_key(|row| (row.referred_at, row.referee_id));
    let seen = sqlx::query!(
        "SELECT network, first_seen, last_seen FROM sign_in_networks WHERE user_id = $1",
        referrer
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut referrer_networks: HashMap<Vec<u8>, Vec<(OffsetDateTime, OffsetDateTime)>> = HashMap::new();
    for n in seen {
        referrer_networks
            .entry(n.network)
            .or_default()
            .push((n.first_seen, n.last_seen));
    }
    let window = time::Duration::seconds(rules.network_window_secs);
    // The referrer used the network within the window either side of the sign-up (and by `at`).
    let shared_with_referrer = |network: &[u8], referred_at: OffsetDateTime| {
        referrer_networks.get(network).is_some_and(|spans| {
            spans
                .iter()
                .any(|&(first, last)| first <= (referred_at + window).min(at) && last >= referred_at - window)
        })
    };
    // Rows come oldest first, so the first referee from a network is the one that counts.
    let mut networks_taken = HashSet::new();
    Ok(rows
        .into_iter()
        .map(|row| {
            let (referrer_shared_network, network_taken) = match &row.network {
                Some(network) => (
                    shared_with_referrer(network, row.referred_at),
                    !networks_taken.insert(network.clone()),
                ),
                None => (false, false),
            };
            Facts {
                referee: row.referee_id,
                referee_address: row.address.0,
                channel: row.channel,
                referred_at: row.referred_at,
                account_created_at: row.created_at,
                disabled: row.disabled,
                has_network: row.network.is_some(),
                referrer_shared_network,
                network_taken,
                qualifying_since: row.since,
            }
        })
        .collect())
}

/// One referral as its referrer sees it: the referee's address shortened.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Referral {
    /// The referee's wallet, shortened (`0x1234…abcd`).
    pub referee: String,
    pub channel: Channel,
    #[serde(with = "time::serde::rfc3339")]
    pub referred_at: OffsetDateTime,
    pub status: Status,
    /// Why it does not qualify (yet); none when it does.
    pub reason: Option<Reason>,
    /// When its qualifying activity happened.
    #[serde(with = "time::serde::rfc3339::option")]
    pub qualifying_since: Option<OffsetDateTime>,
}

impl Referral {
    pub fn of(facts: &Facts, rules: &Rules, at: OffsetDateTime) -> Self {
        let outcome = assess(facts, rules, at);
        Self {
            referee: crate::programs::short_address(facts.referee_address),
            channel: facts.channel,
            referred_at: facts.referred_at,
            status: outcome.map_or_else(Reason::status, |()| Status::Qualified),
            reason: outcome.err(),
            qualifying_since: facts.qualifying_since,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn rules() -> Rules {
        Rules {
            version: 1,
            milestone: 3,
            cooldown_secs: 7 * 86_400,
            network_window_secs: 30 * 86_400,
            require_network: true,
            tokens: Vec::new(),
            created_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn qualifying() -> Facts {
        Facts {
            referee: Uuid::nil(),
            referee_address: Address::repeat_byte(0x11),
            channel: Channel::Code,
            referred_at: datetime!(2026-03-01 0:00 UTC),
            account_created_at: datetime!(2026-03-01 0:00 UTC),
            disabled: false,
            has_network: true,
            referrer_shared_network: false,
            network_taken: false,
            qualifying_since: Some(datetime!(2026-03-02 0:00 UTC)),
        }
    }

    #[test]
    fn a_referral_qualifies_from_the_cooldown_boundary_on() {
        let at = datetime!(2026-03-09 0:00 UTC);
        assert_eq!(assess(&qualifying(), &rules(), at), Ok(()));
        let just_before = at - time::Duration::seconds(1);
        assert_eq!(assess(&qualifying(), &rules(), just_before), Err(Reason::CoolingDown));
        let young_account = Facts {
            account_created_at: datetime!(2026-03-02 0:00:01 UTC),
            ..qualifying()
        };
        assert_eq!(assess(&young_account, &rules(), at), Err(Reason::CoolingDown));
    }

    #[test]
    fn each_disqualification_has_its_reason_and_status() {
        let at = datetime!(2026-04-01 0:00 UTC);
        let cases = [
            (
                Facts {
                    disabled: true,
                    ..qualifying()
                },
                Reason::RefereeDisabled,
            ),
            (
                Facts {
                    has_network: false,
                    ..qualifying()
                },
                Reason::NoNetwork,
            ),
            (
                Facts {
                    referrer_shared_network: true,
                    ..qualifying()
                },
                Reason::ReferrerNetwork,
            ),
            (
                Facts {
                    network_taken: true,
                    ..qualifying()
                },
                Reason::DuplicateNetwork,
            ),
            (
                Facts {
                    qualifying_since: None,
                    ..qualifying()
                },
                Reason::NoQualifyingActivity,
            ),
        ];
        for (facts, reason) in cases {
            assert_eq!(assess(&facts, &rules(), at), Err(reason));
        }
        assert_eq!(Reason::DuplicateNetwork.status(), Status::Disqualified);
        assert_eq!(Reason::CoolingDown.status(), Status::Pending);
        let optional = Rules {
            require_network: false,
            ..rules()
        };
        assert_eq!(
            assess(
                &Facts {
                    has_network: false,
                    ..qualifying()
                },
                &optional,
                at
            ),
            Ok(())
        );
    }
}
