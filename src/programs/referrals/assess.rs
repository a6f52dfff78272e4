//! Whether a referral qualifies: [`assess`], a pure function of the facts about it at a time
//! under a rule version, and [`facts`], which reads those facts for every referral of a
//! referrer in one statement from authoritative state (users, sign-in networks, the ledger,
//! billing adjustments).

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
pub async fn facts(
    conn: &mut PgConnection,
    referrer: Uuid,
    rules: &Rules,
    at: OffsetDateTime,
) -> Result<Vec<Facts>, sqlx::Error> {
    // Billed spend counts receipt batches' debits of the referee's campaigns less the price
    // of receipts reversed later; hoster earnings count its credits less what adjustments
    // took back. A referee qualifies in a token while its total there reaches the rule, since
    // the first time its running total did.
    //
    // The statement is a short read, planned to cost more than Postgres' JIT threshold:
    // compiling it took longer than running it (100 ms of 140 for 10,000 referrals).
    let mut tx = conn.begin().await?;
    sqlx::query!("SET LOCAL jit = off").execute(&mut *tx).await?;
    let rows = sqlx::query!(
        r#"WITH r AS (
               SELECT r.referee_id, r.channel, r.referred_at, r.network, u.address, u.created_at,
                      (u.disabled_at IS NOT NULL AND u.disabled_at <= $3) AS disabled,
                      -- Only the first referee from a network counts.
                      (r.network IS NOT NULL AND row_number() OVER (
                           PARTITION BY r.network ORDER BY r.referred_at, r.referee_id) > 1) AS network_taken
               FROM referrals r JOIN users u ON u.id = r.referee_id
               WHERE r.referrer_id = $1 AND r.referred_at <= $3),
           tok AS (SELECT token, min_billed, min_earned FROM referral_rule_tokens WHERE version = $2),
           moves AS (
               SELECT r.referee_id, p.token, p.posted_at AS at, e.posting_id AS seq, -e.amount AS amount, 'billed' AS kind
               FROM r JOIN brands b ON b.owner_id = r.referee_id
               JOIN campaigns c ON c.brand_id = b.id
               JOIN ledger_entries e ON e.escrow_id = c.id
               JOIN ledger_postings p ON p.id = e.posting_id AND p.source = 'receipt_batch'
               UNION ALL
               SELECT r.referee_id, c.token, a.adjusted_at, x.batch_id, -x.price, 'billed'
               FROM r JOIN brands b ON b.owner_id = r.referee_id
               JOIN campaigns c ON c.brand_id = b.id
               JOIN billing_reversed_receipts x ON x.campaign_id = c.id
               JOIN billing_adjustments a ON a.id = x.adjustment_id
               UNION ALL
               SELECT r.referee_id, p.token, p.posted_at, e.posting_id, e.amount, 'earned'
               FROM r JOIN ledger_entries e ON e.payee = r.address AND e.role = 'hoster'
               JOIN ledger_postings p ON p.id = e.posting_id AND p.source IN ('receipt_batch', 'adjustment')),
           running AS (
               SELECT m.referee_id, m.token, m.kind, m.at,
                      sum(m.amount) OVER (PARTITION BY m.referee_id, m.token, m.kind ORDER BY m.at, m.seq) AS total,
                      CASE m.kind WHEN 'billed' THEN t.min_billed ELSE t.min_earned END AS needed
               FROM moves m JOIN tok t ON t.token = m.token
               WHERE m.at <= $3),
           activity AS (
               SELECT referee_id, min(since) AS since FROM (
                   SELECT referee_id, token, kind,
                          min(at) FILTER (WHERE total >= needed) AS since,
                          (array_agg(total >= needed ORDER BY at DESC))[1] AS still
                   FROM running GROUP BY referee_id, token, kind) k
               WHERE still GROUP BY referee_id)
           SELECT r.referee_id AS "referee_id!", r.channel AS "channel!: Channel", r.address AS "address!: SqlAddress",
                  r.referred_at AS "referred_at!", r.created_at AS "created_at!", r.disabled AS "disabled!",
                  (r.network IS NOT NULL) AS "has_network!",
                  EXISTS (SELECT 1 FROM sign_in_networks n
                          WHERE n.user_id = $1 AND n.network = r.network
                            AND n.first_seen <= least(r.referred_at + $4::bigint * interval '1 second', $3)
                            AND n.last_seen >= r.referred_at - $4::bigint * interval '1 second') AS "referrer_shared_network!",
                  r.network_taken AS "network_taken!",
                  a.since AS "since?"
           FROM r LEFT JOIN activity a ON a.referee_id = r.referee_id
           ORDER BY r.referred_at, r.referee_id"#,
        referrer,
        rules.version,
        at,
        rules.network_window_secs
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| Facts {
            referee: row.referee_id,
            referee_address: row.address.0,
            channel: row.channel,
            referred_at: row.referred_at,
            account_created_at: row.created_at,
            disabled: row.disabled,
            has_network: row.has_network,
            referrer_shared_network: row.referrer_shared_network,
            network_taken: row.network_taken,
            qualifying_since: row.since,
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
