//! The referral rules, versioned: an admin's change is a new version, and every assessment
//! and bonus names the version it was made under. Version 1 carries the documented defaults
//! and no token, so nothing qualifies until an admin says what does and which budget pays.

use std::time::Duration;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ReferralError;
use crate::money::Amount;

/// One token's terms: what qualifies a referee, and the bonus per block of qualified
/// referrals, paid from a program budget in that token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ReferralTokenRule)]
#[serde(rename_all = "camelCase")]
pub struct TokenRule {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// An advertiser qualifies once its campaigns are billed at least this much.
    pub min_billed: Amount,
    /// A hoster qualifies once its nodes have earned at least this much.
    pub min_earned: Amount,
    pub bonus: Amount,
    /// The program budget the bonus is a debit of.
    pub budget_id: Uuid,
}

/// A version of the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ReferralRules)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub version: i32,
    /// A bonus for every this many qualified referrals.
    pub milestone: i32,
    /// Both the referee's account and its qualifying activity must be this old, in seconds.
    pub cooldown_secs: i64,
    /// A referee that signed up from a network its referrer used this close in time (before
    /// or after), in seconds, does not count.
    pub network_window_secs: i64,
    /// A referee whose sign-up came with no network does not count.
    pub require_network: bool,
    pub tokens: Vec<TokenRule>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Rules {
    pub fn cooldown(&self) -> time::Duration {
        time::Duration::seconds(self.cooldown_secs)
    }

    pub fn network_window(&self) -> time::Duration {
        time::Duration::seconds(self.network_window_secs)
    }
}

/// A new version, as an admin asks for it.
#[derive(Debug, Clone)]
pub struct NewRules {
    pub milestone: i32,
    pub cooldown: Duration,
    pub network_window: Duration,
    pub require_network: bool,
    pub tokens: Vec<TokenRule>,
}

/// The rules in force: the latest version.
pub async fn current(conn: &mut PgConnection) -> Result<Rules, sqlx::Error> {
    let version = sqlx::query_scalar!("SELECT max(version) AS \"version!\" FROM referral_rules")
        .fetch_one(&mut *conn)
        .await?;
    version_of(conn, version).await
}

/// Version `version` of the rules.
pub async fn version_of(conn: &mut PgConnection, version: i32) -> Result<Rules, sqlx::Error> {
    let rule = sqlx::query!(
        "SELECT version, milestone, cooldown_secs, network_window_secs, require_network, created_at
         FROM referral_rules WHERE version = $1",
        version
    )
    .fetch_one(&mut *conn)
    .await?;
    let tokens = sqlx::query!(
        r#"SELECT token AS "token: SqlAddress", min_billed AS "min_billed: Amount", min_earned AS "min_earned: Amount",
                  bonus AS "bonus: Amount", budget_id
           FROM referral_rule_tokens WHERE version = $1 ORDER BY token"#,
        version
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Rules {
        version: rule.version,
        milestone: rule.milestone,
        cooldown_secs: rule.cooldown_secs,
        network_window_secs: rule.network_window_secs,
        require_network: rule.require_network,
        tokens: tokens
            .into_iter()
            .map(|row| TokenRule {
                token: row.token.0,
                min_billed: row.min_billed,
                min_earned: row.min_earned,
                bonus: row.bonus,
                budget_id: row.budget_id,
            })
            .collect(),
        created_at: rule.created_at,
    })
}

/// Makes `new` the rules in force, as the next version. Each token's budget must be a
/// program budget in that token; versions are taken in turn, so two admins never write one.
pub async fn create(conn: &mut PgConnection, new: &NewRules, admin: Uuid) -> Result<Rules, ReferralError> {
    let mut seen = Vec::new();
    for rule in &new.tokens {
        if seen.contains(&rule.token) {
            return Err(ReferralError::Rules("each token may have one rule"));
        }
        seen.push(rule.token);
        let budget = sqlx::query!(
            r#"SELECT token AS "token: SqlAddress" FROM escrow_accounts WHERE id = $1 AND kind = 'program'"#,
            rule.budget_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ReferralError::Rules("a budget is not a program budget"))?;
        if budget.token.0 != rule.token {
            return Err(ReferralError::Rules("a budget must be in its rule's token"));
        }
    }
    sqlx::query!("LOCK TABLE referral_rules IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    let version = sqlx::query_scalar!(
        r#"INSERT INTO referral_rules (version, milestone, cooldown_secs, network_window_secs, require_network, created_by)
           SELECT max(version) + 1, $1, $2, $3, $4, $5 FROM referral_rules
           RETURNING version"#,
        new.milestone,
        new.cooldown.as_secs() as i64,
        new.network_window.as_secs() as i64,
        new.require_network,
        admin
    )
    .fetch_one(&mut *conn)
    .await?;
    for rule in &new.tokens {
        sqlx::query!(
            "INSERT INTO referral_rule_tokens (version, token, min_billed, min_earned, bonus, budget_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            version,
            rule.token.as_slice(),
            rule.min_billed as Amount,
            rule.min_earned as Amount,
            rule.bonus as Amount,
            rule.budget_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(version_of(conn, version).await?)
}
