//! A reseller's contracts and their workflow:
//!
//! ```text
//! draft -> pending_approval -> approved -> active -> expired (its end passes)
//!   ^             |                                 \
//!   +-------------+ (withdrawn, or sent back)        terminated (from any live state)
//! ```
//!
//! The reseller drafts, submits and withdraws; an admin approves or sends back, activates
//! and terminates (a reseller may terminate its own active contract). Every change is a row
//! naming who and why. At most one contract is approved or active at a time.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ResellerError, id_of_owner, invalid};
use crate::platform::values::{Text, ValueError};

/// Where a contract stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResellerContractStatus)]
pub enum Status {
    Draft,
    PendingApproval,
    Approved,
    Active,
    /// Active, and past its end (derived, never stored).
    Expired,
    Terminated,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Terminated => "terminated",
        }
    }

    /// Whether the workflow lets `admin` (or, if not, the reseller) move a contract from
    /// this status to `to`.
    pub fn allows(self, to: Status, admin: bool) -> bool {
        use Status::*;
        match (self, to) {
            (Draft, PendingApproval) | (PendingApproval, Draft) => true,
            (PendingApproval, Approved) | (Approved, Active) => admin,
            (Draft | PendingApproval | Approved, Terminated) => admin,
            (Active, Terminated) => true,
            _ => false,
        }
    }
}

/// The statuses stored; `expired` is read off an active contract's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "reseller_contract_status", rename_all = "snake_case")]
enum Stored {
    Draft,
    PendingApproval,
    Approved,
    Active,
    Terminated,
}

impl Stored {
    fn of(status: Status) -> Option<Self> {
        Some(match status {
            Status::Draft => Self::Draft,
            Status::PendingApproval => Self::PendingApproval,
            Status::Approved => Self::Approved,
            Status::Active => Self::Active,
            Status::Terminated => Self::Terminated,
            Status::Expired => return None,
        })
    }

    /// The status as stored: what a recorded change moved to.
    fn recorded(self) -> Status {
        match self {
            Self::Draft => Status::Draft,
            Self::PendingApproval => Status::PendingApproval,
            Self::Approved => Status::Approved,
            Self::Active => Status::Active,
            Self::Terminated => Status::Terminated,
        }
    }

    /// The status now: an active contract past its end has expired.
    fn status(self, ends_at: OffsetDateTime, now: OffsetDateTime) -> Status {
        match self {
            Self::Active if now >= ends_at => Status::Expired,
            other => other.recorded(),
        }
    }
}

/// A contract and its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerContract)]
pub struct Contract {
    pub id: Uuid,
    pub reseller_id: Uuid,
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub terms: String,
    pub status: Status,
    pub changes: Vec<Change>,
}

/// One recorded change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerContractChange)]
pub struct Change {
    pub from: Option<Status>,
    pub to: Status,
    pub by: Uuid,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Contract terms a reseller drafts.
#[derive(Debug, Clone)]
pub struct NewContract {
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub terms: String,
}

/// Drafts the next version of the contract of the reseller `owner` runs.
pub async fn draft(
    db: &PgPool,
    owner: Uuid,
    new: &NewContract,
    now: OffsetDateTime,
) -> Result<Contract, ResellerError> {
    let terms = Text::<1, 10_000>::parse(&new.terms).map_err(|error| invalid("terms", error))?;
    if new.ends_at <= new.starts_at {
        return Err(invalid("endsAt", ValueError::Refused("must be after startsAt")));
    }
    if new.ends_at <= now {
        return Err(invalid("endsAt", ValueError::Refused("must be in the future")));
    }
    let mut tx = db.begin().await?;
    let reseller = id_of_owner(&mut *tx, owner).await?;
    // The reseller's row orders concurrent drafts, so each takes the next version.
    sqlx::query!("SELECT id FROM resellers WHERE id = $1 FOR UPDATE", reseller)
        .fetch_one(&mut *tx)
        .await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO reseller_contracts (reseller_id, version, starts_at, ends_at, terms)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM reseller_contracts WHERE reseller_id = $1
         RETURNING id",
        reseller,
        new.starts_at,
        new.ends_at,
        terms.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    record(&mut tx, id, None, Stored::Draft, owner, "drafted", now).await?;
    tx.commit().await?;
    get(db, id, now).await
}

/// Who asks for a change.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Admin(Uuid),
    /// The owner of the reseller whose contract it must be.
    Reseller(Uuid),
}

/// Moves contract `id` to `to`, as the workflow lets `actor`.
pub async fn change(
    db: &PgPool,
    id: Uuid,
    actor: Actor,
    to: Status,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Contract, ResellerError> {
    let reason = Text::<1, 500>::parse(reason).map_err(|error| invalid("reason", error))?;
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"SELECT c.status AS "status: Stored", c.ends_at, r.owner_id FROM reseller_contracts c
           JOIN resellers r ON r.id = c.reseller_id WHERE c.id = $1 FOR UPDATE OF c"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ResellerError::UnknownContract)?;
    let (by, admin) = match actor {
        Actor::Admin(user) => (user, true),
        Actor::Reseller(owner) if owner == row.owner_id => (owner, false),
        // Another reseller's contract is not theirs to see.
        Actor::Reseller(_) => return Err(ResellerError::UnknownContract),
    };
    let from = row.status.status(row.ends_at, now);
    let stored = Stored::of(to).filter(|_| from.allows(to, admin));
    let Some(stored) = stored else {
        return Err(ResellerError::Workflow { from, to, admin });
    };
    if to == Status::Active && row.ends_at <= now {
        return Err(ResellerError::ContractEnded);
    }
    let moved = sqlx::query!(
        "UPDATE reseller_contracts SET status = $2 WHERE id = $1",
        id,
        stored as Stored
    )
    .execute(&mut *tx)
    .await;
    match moved {
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("reseller_contracts_live_idx") => {
            return Err(ResellerError::AnotherLive);
        }
        other => other?,
    };
    record(&mut tx, id, Some(row.status), stored, by, reason.as_str(), now).await?;
    tx.commit().await?;
    tracing::info!(contract = %id, from = from.label(), to = to.label(), %by, "reseller contract changed");
    get(db, id, now).await
}

async fn record(
    conn: &mut sqlx::PgConnection,
    contract: Uuid,
    from: Option<Stored>,
    to: Stored,
    by: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO reseller_contract_changes (contract_id, from_status, to_status, changed_by, reason, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        contract,
        from as Option<Stored>,
        to as Stored,
        by,
        reason,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Contract `id` with its history.
pub async fn get(db: &PgPool, id: Uuid, now: OffsetDateTime) -> Result<Contract, ResellerError> {
    let reseller = sqlx::query_scalar!("SELECT reseller_id FROM reseller_contracts WHERE id = $1", id)
        .fetch_optional(db)
        .await?
        .ok_or(ResellerError::UnknownContract)?;
    of_reseller(db, reseller, now)
        .await?
        .into_iter()
        .find(|contract| contract.id == id)
        .ok_or(ResellerError::UnknownContract)
}

/// A reseller's contracts, newest version first, each with its history.
pub async fn of_reseller(db: &PgPool, reseller: Uuid, now: OffsetDateTime) -> Result<Vec<Contract>, ResellerError> {
    let contracts = sqlx::query!(
        r#"SELECT id, version, starts_at, ends_at, terms, status AS "status: Stored"
           FROM reseller_contracts WHERE reseller_id = $1 ORDER BY version DESC"#,
        reseller
    )
    .fetch_all(db)
    .await?;
    let ids: Vec<Uuid> = contracts.iter().map(|c| c.id).collect();
    let changes = sqlx::query!(
        r#"SELECT contract_id, from_status AS "from_status: Stored", to_status AS "to_status: Stored", changed_by,
                  reason, changed_at
           FROM reseller_contract_changes WHERE contract_id = ANY($1) ORDER BY id"#,
        &ids
    )
    .fetch_all(db)
    .await?;
    Ok(contracts
        .into_iter()
        .map(|c| {
            let history = changes
                .iter()
                .filter(|change| change.contract_id == c.id)
                .map(|change| Change {
                    from: change.from_status.map(Stored::recorded),
                    to: change.to_status.recorded(),
                    by: change.changed_by,
                    reason: change.reason.clone(),
                    at: change.changed_at,
                })
                .collect();
            Contract {
                id: c.id,
                reseller_id: reseller,
                version: u32::try_from(c.version).unwrap_or_default(),
                starts_at: c.starts_at,
                ends_at: c.ends_at,
                terms: c.terms,
                status: c.status.status(c.ends_at, now),
                changes: history,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn the_workflow_admits_each_actor_only_its_moves() {
        assert!(Draft.allows(PendingApproval, false));
        assert!(PendingApproval.allows(Draft, false), "withdrawn");
        assert!(PendingApproval.allows(Draft, true), "sent back");
        assert!(
            !PendingApproval.allows(Approved, false),
            "a reseller cannot approve itself"
        );
        assert!(PendingApproval.allows(Approved, true));
        assert!(!Approved.allows(Active, false));
        assert!(Approved.allows(Active, true));
        assert!(Active.allows(Terminated, false), "a reseller may end its own");
        assert!(!Draft.allows(Terminated, false));
        for from in [Expired, Terminated] {
            for to in [Draft, PendingApproval, Approved, Active, Expired, Terminated] {
                assert!(!from.allows(to, true), "{from:?} is final");
            }
        }
        assert!(!Draft.allows(Active, true), "no skipping approval");
        assert!(!Active.allows(Expired, true), "expiry is the clock's");
    }
}
