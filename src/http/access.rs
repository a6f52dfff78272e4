//! Who may call an operation. Each handler names its policy in its signature, as the
//! extractor `Caller<P>`, and this one place checks it for sessions and API keys alike,
//! reads included, before the handler reads its path or body.
//!
//! The OpenAPI document states the same policy as the operation's bearer scopes (the roles
//! that admit a caller), and `tests/it/access.rs` walks every route of the router to check
//! that each refuses a caller without one of them.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::accounts::{Credential, Principal, Role};

/// Which callers an operation admits.
pub trait Policy: Send + Sync + 'static {
    /// A caller holding any one of these roles is admitted.
    const ROLES: &'static [Role];
    /// Only a wallet session is admitted, never an API key: what a key could do with this
    /// (mint keys, take roles) would outlive the key's own revocation.
    const SESSION_ONLY: bool = false;
}

/// The authenticated caller of an operation, admitted by its policy `P`.
pub struct Caller<P> {
    principal: Principal,
    policy: PhantomData<P>,
}

impl<P> Caller<P> {
    pub fn into_inner(self) -> Principal {
        self.principal
    }
}

impl<P> Deref for Caller<P> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P> fmt::Debug for Caller<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Caller").field(&self.principal).finish()
    }
}

/// Why a caller was not admitted.
fn refusal<P: Policy>(principal: &Principal) -> Option<String> {
    if P::SESSION_ONLY && !matches!(principal.credential, Credential::Session) {
        return Some("this needs a wallet session, not an API key".to_owned());
    }
    if P::ROLES.iter().any(|role| principal.has(*role)) {
        return None;
    }
    let roles: Vec<String> = P::ROLES.iter().map(Role::to_string).collect();
    Some(match roles.as_slice() {
        [one] => format!("this needs the {one} role"),
        [rest @ .., last] => format!("this needs the {} or {last} role", rest.join(", ")),
        [] => "nobody may call this".to_owned(),
    })
}

impl<P: Policy> FromRequestParts<AppState> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        match refusal::<P>(&principal) {
            None => Ok(Caller {
                principal,
                policy: PhantomData,
            }),
            Some(reason) => Err(ApiError::Forbidden(reason)),
        }
    }
}

/// Declares a policy: a marker type and the roles that admit a caller.
macro_rules! policy {
    ($(#[$doc:meta])* $name:ident = [$($role:ident),+] $(, session only = $session:literal)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl Policy for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),+];
            $(const SESSION_ONLY: bool = $session;)?
        }
    };
}

policy!(
    /// Anyone signed in, with any role: their own account and earnings.
    SignedIn = [Advertiser, Hoster, Viewer, Admin, Seller, Buyer, Affiliate]
);
policy!(
    /// A wallet session of anyone: managing API keys and taking roles.
    WalletSession = [Advertiser, Hoster, Viewer, Admin, Seller, Buyer, Affiliate],
    session only = true
);
policy!(
    /// Viewers: their pseudonymous viewer id.
    Viewers = [Viewer]
);
policy!(
    /// Advertisers creating what they will own (brands and campaigns).
    Advertisers = [Advertiser]
);
policy!(
    /// Advertisers managing their own brands, campaigns, ad sets and ads; admins, all of them.
    CampaignManagers = [Advertiser, Admin]
);
policy!(
    /// Hosters registering nodes they will own.
    Hosters = [Hoster]
);
policy!(
    /// Hosters managing their own nodes; admins, all of them.
    NodeManagers = [Hoster, Admin]
);
policy!(
    /// Who needs the catalog of placements and default prices: advertisers pricing their
    /// ads, hosters filling placements, admins keeping it.
    CatalogReaders = [Advertiser, Hoster, Admin]
);
policy!(
    /// Sellers listing items they will own.
    Sellers = [Seller]
);
policy!(
    /// Sellers managing their own items and sales; admins, all of them.
    ItemManagers = [Seller, Admin]
);
policy!(
    /// Buyers ordering, and holding licenses.
    Purchasers = [Buyer]
);
policy!(
    /// Buyers, with their orders and downloads; admins see them all.
    Buyers = [Buyer, Admin]
);
policy!(
    /// Affiliates, with their codes, commissions and attributed advertisers.
    Affiliates = [Affiliate]
);
policy!(
    /// Operators.
    Admins = [Admin]
);

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;
    use uuid::Uuid;

    use super::*;

    fn principal(roles: &[Role], credential: Credential) -> Principal {
        Principal {
            user_id: Uuid::nil(),
            address: Address::ZERO,
            roles: roles.to_vec(),
            credential,
        }
    }

    fn key() -> Credential {
        Credential::ApiKey { id: Uuid::nil() }
    }

    #[test]
    fn a_role_outside_the_policy_is_refused_and_named() {
        let hoster_key = principal(&[Role::Hoster], key());
        assert_eq!(
            refusal::<CampaignManagers>(&hoster_key).as_deref(),
            Some("this needs the advertiser or admin role")
        );
        assert_eq!(
            refusal::<Admins>(&hoster_key).as_deref(),
            Some("this needs the admin role")
        );
        assert_eq!(refusal::<NodeManagers>(&hoster_key), None);
    }

    #[test]
    fn a_key_whose_owner_lost_its_role_is_refused_everywhere() {
        let orphan = principal(&[], key());
        assert!(refusal::<SignedIn>(&orphan).is_some());
        assert!(refusal::<CatalogReaders>(&orphan).is_some());
    }

    #[test]
    fn an_api_key_cannot_act_for_a_wallet_session() {
        let viewer_key = principal(&[Role::Viewer], key());
        assert_eq!(
            refusal::<WalletSession>(&viewer_key).as_deref(),
            Some("this needs a wallet session, not an API key")
        );
    }
}
