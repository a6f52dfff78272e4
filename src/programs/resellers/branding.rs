//! A reseller's branding and custom domain. The branding (logo, colours, support contact)
//! is served by host name, to the pages and the docs, once the reseller has proven the
//! domain: a TXT record at `_adescrow-challenge.<domain>` carrying the token it was given.
//! The proof is looked up through [`TxtResolver`]: the system's DNS in production
//! ([`SystemDns`]), a double in tests.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ResellerError, id_of_owner, invalid};
use crate::platform::values::{ValueError, WebUrl};

/// Where the TXT record must be, under the domain.
pub const CHALLENGE_LABEL: &str = "_adescrow-challenge";
/// What the record's text starts with, before the token.
const RECORD_PREFIX: &str = "adescrow-verify=";

/// How a reseller looks in its pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ResellerBranding)]
pub struct Branding {
    /// An https URL of its logo.
    #[schema(max_length = 2048)]
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_colour: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent_colour: Option<String>,
    /// An email address or URL its advertisers reach it at.
    #[schema(min_length = 1, max_length = 200)]
    pub support_contact: Option<String>,
}

impl Branding {
    /// The branding with each value checked: an http(s) logo URL, colours as lower-case
    /// `#rrggbb`, a contact of 1 to 200 characters on one line.
    fn parse(self) -> Result<Self, ResellerError> {
        let logo_url = self
            .logo_url
            .map(|url| {
                url.parse::<WebUrl>()
                    .ok()
                    .filter(|url| url.as_str().len() <= 2048)
                    .map(|url| url.as_str().to_owned())
                    .ok_or_else(|| invalid("logoUrl", ValueError::NotWebUrl))
            })
            .transpose()?;
        let colour = |value: Option<String>, field| {
            value
                .map(|c| {
                    let c = c.trim().to_ascii_lowercase();
                    let ok = c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
                    ok.then_some(c)
                        .ok_or_else(|| invalid(field, ValueError::Refused("must be a colour as #rrggbb")))
                })
                .transpose()
        };
        let support_contact = self
            .support_contact
            .map(|contact| {
                let contact = contact.trim().to_owned();
                if !(1..=200).contains(&contact.chars().count()) {
                    return Err(invalid("supportContact", ValueError::Length { min: 1, max: 200 }));
                }
                if contact.chars().any(char::is_control) {
                    return Err(invalid("supportContact", ValueError::ControlCharacter));
                }
                Ok(contact)
            })
            .transpose()?;
        Ok(Self {
            logo_url,
            primary_colour: colour(self.primary_colour, "primaryColour")?,
            accent_colour: colour(self.accent_colour, "accentColour")?,
            support_contact,
        })
    }
}

/// A custom domain and where its proof stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerDomain)]
pub struct Domain {
    pub name: String,
    /// The TXT record to publish: its name and its text.
    pub record_name: String,
    pub record_value: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
}

impl Domain {
    pub(super) fn new(name: String, token: &str, verified_at: Option<OffsetDateTime>) -> Self {
        Self {
            record_name: format!("{CHALLENGE_LABEL}.{name}"),
            record_value: format!("{RECORD_PREFIX}{token}"),
            name,
            verified_at,
        }
    }
}

/// What anyone sees of the brand a host name serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerPublicBranding)]
pub struct PublicBranding {
    pub name: String,
    /// The code its advertisers join with.
    pub code: String,
    pub domain: String,
    #[serde(flatten)]
    pub branding: Branding,
}

/// A boxed future, for resolvers behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Looks up TXT records.
pub trait TxtResolver: Send + Sync + fmt::Debug {
    /// The texts of the TXT records at `name`; an error says why none could be read.
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>>;
}

/// The system's DNS (its resolver configuration), through hickory.
#[derive(Debug, Default)]
pub struct SystemDns {
    resolver: tokio::sync::OnceCell<Result<hickory_resolver::TokioResolver, String>>,
}

impl TxtResolver for SystemDns {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let resolver = self
                .resolver
                .get_or_init(|| async {
                    hickory_resolver::Resolver::builder_tokio()
                        .map_err(|error| format!("no DNS configuration: {error}"))?
                        .build()
                        .map_err(|error| format!("no DNS resolver: {error}"))
                })
                .await
                .as_ref()
                .map_err(Clone::clone)?;
            // A fully qualified name: the system's search domains do not apply.
            let lookup = resolver
                .txt_lookup(format!("{name}."))
                .await
                .map_err(|error| error.to_string())?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    // A record's text may come in several strings, read as one.
                    hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }
}

/// Sets the branding of the reseller `owner` runs.
pub async fn set(db: &PgPool, owner: Uuid, branding: Branding) -> Result<Branding, ResellerError> {
    let branding = branding.parse()?;
    let id = id_of_owner(db, owner).await?;
    sqlx::query!(
        "UPDATE resellers SET logo_url = $2, primary_colour = $3, accent_colour = $4, support_contact = $5 WHERE id = $1",
        id,
        branding.logo_url,
        branding.primary_colour,
        branding.accent_colour,
        branding.support_contact
    )
    .execute(db)
    .await?;
    Ok(branding)
}

/// A host name as stored: lower case, without a trailing dot or a port; `None` when it
/// cannot be a domain.
pub fn normalize(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.rsplit_once(':').map_or(host.as_str(), |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            ""
        }
    });
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = host.split('.').collect();
    (host.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l))).then(|| host.to_owned())
}

/// Claims `domain` for the reseller `owner` runs, with a fresh token; unproven until
/// [`verify`] finds the record. Claiming again (the same or another domain) starts over.
pub async fn claim(db: &PgPool, owner: Uuid, domain: &str) -> Result<Domain, ResellerError> {
    let name = normalize(domain).ok_or_else(|| invalid("domain", ValueError::Refused("must be a domain name")))?;
    let id = id_of_owner(db, owner).await?;
    let token = hex::encode(rand::random::<[u8; 16]>());
    let claimed = sqlx::query!(
        "UPDATE resellers SET domain = $2, domain_token = $3, domain_verified_at = NULL WHERE id = $1",
        id,
        name,
        token
    )
    .execute(db)
    .await;
    match claimed {
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("resellers_domain_key") => {
            return Err(ResellerError::DomainTaken(name));
        }
        other => other?,
    };
    Ok(Domain::new(name, &token, None))
}

/// Looks for the claimed domain's TXT record and marks it proven when it carries the token.
pub async fn verify(
    db: &PgPool,
    resolver: &dyn TxtResolver,
    owner: Uuid,
    now: OffsetDateTime,
) -> Result<Domain, ResellerError> {
    let id = id_of_owner(db, owner).await?;
    let row = sqlx::query!(
        "SELECT domain, domain_token, domain_verified_at FROM resellers WHERE id = $1",
        id
    )
    .fetch_one(db)
    .await?;
    let (Some(name), Some(token)) = (row.domain, row.domain_token) else {
        return Err(ResellerError::NoDomain);
    };
    let domain = Domain::new(name, &token, row.domain_verified_at);
    let texts = resolver
        .txt(&domain.record_name)
        .await
        .map_err(|why| ResellerError::Unproven(format!("{} could not be read: {why}", domain.record_name)))?;
    if !texts.iter().any(|text| text.trim() == domain.record_value) {
        return Err(ResellerError::Unproven(format!(
            "no TXT record at {} reads {}",
            domain.record_name, domain.record_value
        )));
    }
    // Only the token looked up: a claim made meanwhile has another and stays unproven.
    sqlx::query!(
        "UPDATE resellers SET domain_verified_at = coalesce(domain_verified_at, $3) WHERE id = $1 AND domain_token = $2",
        id,
        token,
        now
    )
    .execute(db)
    .await?;
    Ok(Domain {
        verified_at: Some(row.domain_verified_at.unwrap_or(now)),
        ..domain
    })
}

/// The branding served at `host`: a reseller's whose domain it is and is proven.
pub async fn by_host(db: &PgPool, host: &str) -> Result<Option<PublicBranding>, sqlx::Error> {
    let Some(host) = normalize(host) else {
        return Ok(None);
    };
    let row = sqlx::query!(
        "SELECT name, code, domain AS \"domain!\", logo_url, primary_colour, accent_colour, support_contact
         FROM resellers WHERE domain = $1 AND domain_verified_at IS NOT NULL",
        host
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| PublicBranding {
        name: row.name,
        code: row.code,
        domain: row.domain,
        branding: Branding {
            logo_url: row.logo_url,
            primary_colour: row.primary_colour,
            accent_colour: row.accent_colour,
            support_contact: row.support_contact,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_normalize_or_are_refused() {
        assert_eq!(normalize("Ads.Agency.Example.").as_deref(), Some("ads.agency.example"));
        assert_eq!(
            normalize("ads.agency.example:8443").as_deref(),
            Some("ads.agency.example")
        );
        for bad in [
            "localhost",
            "",
            "-a.example",
            "a..example",
            "a_b.example",
            "ads.example:x",
            "a b.example",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn branding_is_checked_and_colours_lowered() {
        let branding = Branding {
            logo_url: Some("https://agency.example/logo.svg".into()),
            primary_colour: Some("#A1B2C3".into()),
            accent_colour: None,
            support_contact: Some(" help@agency.example ".into()),
        }
        .parse()
        .unwrap();
        assert_eq!(branding.primary_colour.as_deref(), Some("#a1b2c3"));
        assert_eq!(branding.support_contact.as_deref(), Some("help@agency.example"));
        for (bad, field) in [
            (
                Branding {
                    logo_url: Some("ftp://x.example/a".into()),
                    ..Branding::default()
                },
                "logoUrl",
            ),
            (
                Branding {
                    accent_colour: Some("red".into()),
                    ..Branding::default()
                },
                "accentColour",
            ),
            (
                Branding {
                    support_contact: Some(" ".into()),
                    ..Branding::default()
                },
                "supportContact",
            ),
        ] {
            match bad.parse() {
                Err(ResellerError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
