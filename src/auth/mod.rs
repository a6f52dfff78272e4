//! Who is calling: wallet sign-in (SIWE), session tokens, API keys and roles.

pub mod api_key;
pub mod client_network;
pub mod node_session;
pub mod personal_sign;
pub mod principal;
pub mod session;
pub mod siwe;

pub use principal::{Authenticated, Credential, Principal};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do. A user may hold several roles; an API key acts with exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Funds campaigns and manages brands, campaigns and ads.
    Advertiser,
    /// Runs nodes that show ads and report witnessed receipts.
    Hoster,
    /// Sees ads; grants consent and earns rewards.
    Viewer,
    /// Operates the platform; sees everything.
    Admin,
}

impl Role {
    /// Roles a user may take on by themselves. Admin is granted only by configuration or by
    /// another admin.
    pub fn is_self_service(self) -> bool {
        !matches!(self, Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Advertiser => "advertiser",
            Role::Hoster => "hoster",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        })
    }
}
