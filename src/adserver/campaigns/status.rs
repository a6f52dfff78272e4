//! The campaign status machine. [`check`] is the one place that says which changes are
//! allowed and who may make them; everything that changes a status goes through it.
//!
//! ```text
//! DRAFT -> SCHEDULED -> RUNNING <-> PAUSED
//!              ^  ^        |
//!              |  +--------+            (outside its window or dates)
//!              |           v
//!              +---- BUDGET_REACHED
//! any -> COMPLETED
//! ```

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "campaign_status", rename_all = "snake_case")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Being set up; never runs.
    Draft,
    /// Ready; runs when inside its dates and daypart with budget left.
    Scheduled,
    /// Serving ads.
    Running,
    /// Stopped by its advertiser until resumed.
    Paused,
    /// Stopped because the brand's daily or monthly budget, or the escrow, is spent.
    BudgetReached,
    /// Finished for good.
    Completed,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 6] = [
        Self::Draft,
        Self::Scheduled,
        Self::Running,
        Self::Paused,
        Self::BudgetReached,
        Self::Completed,
    ];
}

impl std::fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            // Unit variants always serialize as their names.
            _ => write!(f, "{self:?}"),
        }
    }
}

/// Why a status changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "status_cause", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum StatusCause {
    /// The advertiser (or an admin) asked for it.
    User,
    /// The scheduler: dates and dayparting.
    Scheduler,
    /// The scheduler: budgets spent or back.
    Budget,
}

/// A change the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a campaign that is {from} cannot become {to}")]
    NotAllowed { from: CampaignStatus, to: CampaignStatus },
    #[error("only the scheduler moves a campaign from {from} to {to}")]
    SchedulerOnly { from: CampaignStatus, to: CampaignStatus },
}

/// The edges of the machine and who may take each, except `-> COMPLETED` (below).
const EDGES: &[(CampaignStatus, CampaignStatus, &[StatusCause])] = {
    use CampaignStatus::*;
    use StatusCause::*;
    &[
        (Draft, Scheduled, &[User]),
        (Scheduled, Running, &[Scheduler]),
        (Running, Scheduled, &[Scheduler]),
        (Running, Paused, &[User]),
        (Paused, Running, &[User]),
        (Running, BudgetReached, &[Budget]),
        (BudgetReached, Scheduled, &[Budget]),
    ]
};

/// Whether `cause` may move a campaign from `from` to `to`.
pub fn check(from: CampaignStatus, to: CampaignStatus, cause: StatusCause) -> Result<(), TransitionError> {
    use CampaignStatus::Completed;
    if to == Completed && from != Completed {
        // Advertisers end campaigns; the scheduler ends them at their end date.
        return if cause == StatusCause::Budget {
            Err(TransitionError::NotAllowed { from, to })
        } else {
            Ok(())
        };
    }
    match EDGES.iter().find(|(f, t, _)| *f == from && *t == to) {
        Some((_, _, causes)) if causes.contains(&cause) => Ok(()),
        Some(_) => Err(TransitionError::SchedulerOnly { from, to }),
        None => Err(TransitionError::NotAllowed { from, to }),
    }
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;
    use super::*;

    /// Every (from, to, cause) the machine allows; everything else must be refused.
    const ALLOWED: &[(CampaignStatus, CampaignStatus, StatusCause)] = &[
        (Draft, Scheduled, StatusCause::User),
        (Scheduled, Running, StatusCause::Scheduler),
        (Running, Scheduled, StatusCause::Scheduler),
        (Running, Paused, StatusCause::User),
        (Paused, Running, StatusCause::User),
        (Running, BudgetReached, StatusCause::Budget),
        (BudgetReached, Scheduled, StatusCause::Budget),
        (Draft, Completed, StatusCause::User),
        (Scheduled, Completed, StatusCause::User),
        (Running, Completed, StatusCause::User),
        (Paused, Completed, StatusCause::User),
        (BudgetReached, Completed, StatusCause::User),
        (Draft, Completed, StatusCause::Scheduler),
        (Scheduled, Completed, StatusCause::Scheduler),
        (Running, Completed, StatusCause::Scheduler),
        (Paused, Completed, StatusCause::Scheduler),
        (BudgetReached, Completed, StatusCause::Scheduler),
    ];

    #[test]
    fn every_transition_is_allowed_or_refused_as_specified() {
        let causes = [StatusCause::User, StatusCause::Scheduler, StatusCause::Budget];
        for from in CampaignStatus::ALL {
            for to in CampaignStatus::ALL {
                for cause in causes {
                    let expected = ALLOWED.contains(&(from, to, cause));
                    assert_eq!(check(from, to, cause).is_ok(), expected, "{from} -> {to} by {cause:?}");
                }
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            check(Scheduled, Running, StatusCause::User),
            Err(TransitionError::SchedulerOnly {
                from: Scheduled,
                to: Running
            })
        );
        assert_eq!(
            check(Completed, Running, StatusCause::User).unwrap_err().to_string(),
            "a campaign that is COMPLETED cannot become RUNNING"
        );
    }
}
