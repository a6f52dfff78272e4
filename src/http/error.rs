//! The API's one error type and its mapping to RFC 9457 problem details.
//!
//! Every failure a client can see is an [`ApiError`]; [`ApiError::kind`] maps it to a stable
//! problem type, status and title in one place. Internal errors are logged with their cause
//! and reach the client as a bare 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use problem_details::ProblemDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::AccountError;
use crate::accounts::api_key::ApiKeyError;
use crate::accounts::node_session::NodeSignInError;
use crate::accounts::nodes::NodeError;
use crate::accounts::principal::AuthError;
use crate::accounts::session::RefreshError;
use crate::accounts::siwe::{NonceError, SignInError};
use crate::adserver::analytics::RangeError;
use crate::adserver::brands::BrandError;
use crate::adserver::campaigns::CampaignError;
use crate::adserver::creatives::CreativeError;
use crate::adserver::placements::PlacementError;
use crate::adserver::serving::UnknownPlacement;
use crate::billing::store::BillError;
use crate::billing::verify::BatchError;
use crate::mirror::MirrorError;
use crate::money::escrow::EscrowError;
use crate::money::holds::HoldError;
use crate::money::ledger::LedgerError;
use crate::money::treasury::TreasuryError;
use crate::platform::values::Invalid;
use crate::settlement::relayer::consent::ConsentError;

/// Stable problem types. The slug is part of the API: clients branch on `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    MalformedBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidField,
    Unauthenticated,
    SignInRejected,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    Timeout,
    Unavailable,
    Internal,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 14] = [
        Self::MalformedBody,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::InvalidField,
        Self::Unauthenticated,
        Self::SignInRejected,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::RateLimited,
        Self::Timeout,
        Self::Unavailable,
        Self::Internal,
    ];

    /// (slug, status, title)
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::MalformedBody => ("malformed-body", StatusCode::BAD_REQUEST, "Malformed request body"),
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            ),
            Self::PayloadTooLarge => (
                "payload-too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ),
            Self::InvalidField => ("invalid-field", StatusCode::UNPROCESSABLE_ENTITY, "Invalid field"),
            Self::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED, "Authentication required"),
            Self::SignInRejected => ("sign-in-rejected", StatusCode::UNAUTHORIZED, "Sign-in rejected"),
            Self::Forbidden => ("forbidden", StatusCode::FORBIDDEN, "Not allowed"),
            Self::NotFound => ("not-found", StatusCode::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => (
                "method-not-allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ),
            Self::Conflict => ("conflict", StatusCode::CONFLICT, "Conflict"),
            Self::RateLimited => ("rate-limited", StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            Self::Timeout => ("timeout", StatusCode::SERVICE_UNAVAILABLE, "Request timed out"),
            Self::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
            Self::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
        }
    }

    pub fn slug(self) -> &'static str {
        self.describe().0
    }

    pub fn status(self) -> StatusCode {
        self.describe().1
    }

    /// The `type` URI of this problem; `GET /problems/{slug}` describes it.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.slug() == slug)
    }

    /// The kind a bare status code (from a layer that knows nothing of problems) maps to.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::MalformedBody,
            StatusCode::UNAUTHORIZED => Self::Unauthenticated,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::InvalidField,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// Members this API adds to RFC 9457's standard ones.
#[derive(Debug, Default, Serialize)]
pub struct ProblemExtensions {
    /// The request field at fault, as a path (`message.nonce`, `items[2].price`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An RFC 9457 problem document, as every error response carries it
/// (`Content-Type: application/problem+json`). Schema for the OpenAPI document.
#[derive(Debug, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemSchema {
    /// Stable identifier of the problem type; `GET` it for a description.
    #[schema(example = "/problems/invalid-field")]
    r#type: String,
    title: String,
    status: u16,
    /// What went wrong in this request.
    detail: Option<String>,
    /// The request field at fault, when there is one.
    field: Option<String>,
}

/// Everything that can go wrong in a request, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    MalformedBody(String),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body is larger than this endpoint accepts")]
    PayloadTooLarge,
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A monthly quota is used up: `field` names it, `Retry-After` says when it renews.
    #[error("{message}")]
    QuotaExceeded {
        quota: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Handlers return this.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::MalformedBody(_) => ProblemKind::MalformedBody,
            Self::UnsupportedMediaType => ProblemKind::UnsupportedMediaType,
            Self::PayloadTooLarge => ProblemKind::PayloadTooLarge,
            Self::InvalidField { .. } => ProblemKind::InvalidField,
            Self::Unauthenticated(_) => ProblemKind::Unauthenticated,
            Self::SignIn(SignInError::Database(_)) | Self::Internal(_) => ProblemKind::Internal,
            Self::SignIn(_) => ProblemKind::SignInRejected,
            Self::Forbidden(_) => ProblemKind::Forbidden,
            Self::NotFound(_) => ProblemKind::NotFound,
            Self::Conflict { .. } => ProblemKind::Conflict,
            Self::RateLimited { .. } | Self::QuotaExceeded { .. } => ProblemKind::RateLimited,
            Self::Unavailable(_) => ProblemKind::Unavailable,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::InvalidField { field, .. } => Some(field.clone()),
            Self::Conflict { field, .. } => field.clone(),
            Self::QuotaExceeded { quota, .. } => Some((*quota).to_owned()),
            Self::SignIn(error) => Some(error.field().to_owned()).filter(|f| !f.is_empty()),
            _ => None,
        }
    }
}

/// Builds the problem response for a kind; the one place a problem document is made.
pub fn problem_response(kind: ProblemKind, detail: Option<String>, field: Option<String>) -> Response {
    let (slug, status, title) = kind.describe();
    #[allow(
        clippy::expect_used,
        reason = "slugs are constant lowercase words; a test renders every kind"
    )]
    let mut problem = ProblemDetails::from_status_code(status)
        .with_type(
            format!("/problems/{slug}")
                .parse::<axum::http::Uri>()
                .expect("slugs are valid URI paths"),
        )
        .with_title(title)
        .with_extensions(ProblemExtensions { field });
    if let Some(detail) = detail {
        problem = problem.with_detail(detail);
    }
    problem.into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let detail = match &self {
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                None
            }
            Self::SignIn(SignInError::Database(error)) => {
                tracing::error!(%error, "database error during sign-in");
                None
            }
            other => Some(other.to_string()),
        };
        let mut response = problem_response(kind, detail, self.field());
        match self {
            Self::RateLimited { retry_after_secs } | Self::QuotaExceeded { retry_after_secs, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Self::Unauthenticated(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Database(error) => error.into(),
            other => Self::Unauthenticated(other.to_string()),
        }
    }
}

// accounts

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotSelfService(_) => Self::Forbidden(error.to_string()),
            AccountError::UnknownUser => Self::NotFound("user"),
            AccountError::Disabled => Self::Forbidden(error.to_string()),
            AccountError::SignIn(error) => Self::SignIn(error),
            AccountError::Refresh(error) => error.into(),
            AccountError::Database(error) => error.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid | RefreshError::Reused => Self::Unauthenticated(error.to_string()),
            RefreshError::Database(error) => error.into(),
        }
    }
}

impl From<NonceError> for ApiError {
    fn from(error: NonceError) -> Self {
        match error {
            // Whole seconds, rounded up: a client retrying on time finds a nonce expired.
            NonceError::TooMany { retry_after } => Self::RateLimited {
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            },
            NonceError::Database(error) => error.into(),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::MissingRole(error) => error.into(),
            ApiKeyError::UnknownKey => Self::NotFound("API key"),
            ApiKeyError::Database(error) => error.into(),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::Proof(error) => Self::invalid("signature", error.to_string()),
            NodeError::AddressTaken => Self::conflict("address", error.to_string()),
            NodeError::Database(error) => error.into(),
        }
    }
}

impl From<NodeSignInError> for ApiError {
    fn from(error: NodeSignInError) -> Self {
        match error {
            NodeSignInError::Signature(_) | NodeSignInError::WrongSigner(_) => {
                Self::invalid("signature", error.to_string())
            }
            NodeSignInError::Stale => Self::invalid("issuedAt", error.to_string()),
            NodeSignInError::UnknownNode => Self::invalid("address", error.to_string()),
            NodeSignInError::Retired | NodeSignInError::NotHoster => Self::Forbidden(error.to_string()),
            NodeSignInError::Database(error) => error.into(),
        }
    }
}

// billing

impl From<BatchError> for ApiError {
    fn from(error: BatchError) -> Self {
        Self::invalid(error.field(), error.to_string())
    }
}

impl From<BillError> for ApiError {
    fn from(error: BillError) -> Self {
        match error {
            BillError::SequenceReused(_) => Self::conflict("sequence", error.to_string()),
            BillError::Contended => Self::Unavailable(error.to_string()),
            BillError::Ledger(LedgerError::Database(error)) | BillError::Database(error) => error.into(),
            // Billing spends campaigns and credits payees only: any other refusal is a bug.
            BillError::Ledger(error) => Self::Internal(error.into()),
        }
    }
}

// money

impl From<HoldError> for ApiError {
    fn from(error: HoldError) -> Self {
        let message = error.to_string();
        match error {
            HoldError::NotFound(_) => Self::NotFound("hold"),
            HoldError::Ended { .. }
            | HoldError::NotDue { .. }
            | HoldError::NotSettled { .. }
            | HoldError::DebtOutstanding { .. } => Self::conflict("holdId", message),
            HoldError::Escrow(EscrowError::Database(error)) | HoldError::Database(error) => error.into(),
            HoldError::Escrow(_) => Self::conflict("holdId", message),
        }
    }
}

impl From<TreasuryError> for ApiError {
    fn from(error: TreasuryError) -> Self {
        let message = error.to_string();
        match error {
            TreasuryError::NotConfigured => Self::Unavailable(message),
            TreasuryError::UnknownBudget => Self::NotFound("program budget"),
            TreasuryError::Ended => Self::conflict("budgetId", message),
            TreasuryError::EndsInThePast => Self::invalid("endsAt", message),
            TreasuryError::ZeroAmount => Self::invalid("amount", message),
            TreasuryError::Database(error) => error.into(),
        }
    }
}

// mirror

impl From<MirrorError> for ApiError {
    fn from(error: MirrorError) -> Self {
        match error {
            MirrorError::NotIndexed => Self::NotFound("chain mirror (the indexer has not run yet)"),
            MirrorError::UnknownCampaign => Self::NotFound("campaign"),
            MirrorError::Database(error) => error.into(),
        }
    }
}

// settlement (consent relaying)

impl From<ConsentError> for ApiError {
    fn from(error: ConsentError) -> Self {
        Self::invalid(error.field(), error.to_string())
    }
}

// adserver

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::invalid(invalid.field, invalid.error.to_string())
    }
}

impl From<BrandError> for ApiError {
    fn from(error: BrandError) -> Self {
        let message = error.to_string();
        match error {
            BrandError::NotFound => Self::NotFound("brand"),
            BrandError::ZeroDailyBudget => Self::invalid("dailyBudget", message),
            BrandError::ZeroMonthlyBudget | BrandError::MonthlyBelowDaily => Self::invalid("monthlyBudget", message),
            BrandError::Database(error) => error.into(),
        }
    }
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        let message = error.to_string();
        match error {
            CampaignError::NotFound => Self::NotFound("campaign"),
            CampaignError::UnknownBrand => Self::invalid("brandId", message),
            CampaignError::EndsBeforeStart | CampaignError::EndsInThePast => Self::invalid("endsAt", message),
            CampaignError::ChainCampaignIdTaken => Self::conflict("chainCampaignId", message),
            CampaignError::Completed | CampaignError::Refused { .. } => Self::conflict("status", message),
            CampaignError::Database(error) => error.into(),
        }
    }
}

impl From<CreativeError> for ApiError {
    fn from(error: CreativeError) -> Self {
        let message = error.to_string();
        match error {
            CreativeError::AdSetNotFound => Self::NotFound("ad set"),
            CreativeError::AdNotFound => Self::NotFound("ad"),
            CreativeError::UnknownCampaign => Self::invalid("campaignId", message),
            CreativeError::CampaignCompleted => Self::conflict("campaignId", message),
            CreativeError::UnknownAdSet => Self::invalid("adSetId", message),
            CreativeError::AdSetCampaignCompleted => Self::conflict("adSetId", message),
            CreativeError::MediaUrlRequired => Self::invalid("creative.mediaUrl", message),
            CreativeError::Database(error) => error.into(),
        }
    }
}

impl From<PlacementError> for ApiError {
    fn from(error: PlacementError) -> Self {
        let message = error.to_string();
        match error {
            PlacementError::NotFound => Self::NotFound("placement"),
            PlacementError::SlugTaken => Self::conflict("slug", message),
            PlacementError::Database(error) => error.into(),
        }
    }
}

impl From<RangeError> for ApiError {
    fn from(error: RangeError) -> Self {
        Self::invalid("from", error.to_string())
    }
}

impl From<UnknownPlacement> for ApiError {
    fn from(error: UnknownPlacement) -> Self {
        Self::invalid("placement", error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_kind_renders_with_its_status() {
        for kind in ProblemKind::ALL {
            let response = problem_response(kind, Some("detail".into()), None);
            assert_eq!(response.status(), kind.describe().1, "{kind:?}");
        }
    }
}
