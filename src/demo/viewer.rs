//! The viewer's side: sign in, get a pseudonymous viewer id for hosters to pass along, and
//! grant consent by signing an EIP-712 `ConsentGrant` that the relayer carries on chain, so
//! the viewer pays no gas. Before the grant, the campaign (which requires that consent) is
//! not served to the viewer.

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct;
use reqwest::Method;
use serde_json::json;

use super::advertiser::DemoCampaign;
use super::api::{parsed, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::{Hosting, decide};
use super::report::{Probe, Report, wait_for};
use super::wallet::{self, sign_digest};
use crate::contracts::{ConsentGrant, ConsentRegistry, consent_domain};

/// How long the demo's consent lasts.
const CONSENT_SECONDS: u64 = 86_400;

#[derive(Debug)]
pub struct Viewer {
    pub wallet: PrivateKeySigner,
    /// The pseudonymous id hosters pass with decisions (`vw_...`).
    pub id: String,
}

/// Signs the viewer in and shows that, without consent, the campaign is not served to them.
pub async fn without_consent(
    devnet: &Devnet,
    report: &mut Report<'_>,
    wallet: &PrivateKeySigner,
    hosting: &Hosting,
    campaign: &DemoCampaign,
) -> Result<Viewer> {
    let session = wallet::sign_in(&devnet.api, wallet).await?;
    let id = devnet.api.post("/v1/me/viewer-id", Some(&session), &json!({})).await?;
    let viewer = Viewer {
        wallet: wallet.clone(),
        id: text(&id, "/viewerId")?.to_owned(),
    };
    report.ok(format_args!(
        "viewer {} signed in; hosters only ever see the pseudonymous id {}",
        wallet.address(),
        viewer.id
    ));
    let reason = wait_for(
        report,
        "the ad server to take in the campaign",
        devnet.wait_timeout,
        POLL,
        async || {
            let decision = decide(devnet, hosting, 0, &viewer, campaign).await?;
            if decision["ads"].as_array().is_some_and(|ads| !ads.is_empty()) {
                return Err(Failure::mismatch("decision without consent", "no ad", &decision));
            }
            Ok(match decision["reason"].as_str() {
                Some("consent_missing") => Probe::Ready("consent_missing"),
                other => Probe::Waiting(format!("reason {other:?}")),
            })
        },
    )
    .await?;
    report.ok(format_args!(
        "decision for the viewer on region {}: no ad, reason {reason}",
        campaign.region
    ));
    Ok(viewer)
}

pub async fn grant_consent(devnet: &Devnet, report: &mut Report<'_>, viewer: &Viewer) -> Result<()> {
    let user = viewer.wallet.address();
    let scope = devnet.consent_scope();
    let registry_address = devnet.deployment.consent_registry.address;
    let registry = ConsentRegistry::new(registry_address, devnet.chain.reader.clone());
    let gas_money = devnet.chain.reader.get_balance(user).await?;

    let base = devnet.chain.deadline_base().await?;
    let grant = ConsentGrant {
        user,
        scope,
        expiry: base + CONSENT_SECONDS,
        nonce: registry.nonces(user).call().await?,
        deadline: U256::from(base + 600),
    };
    let digest = grant.eip712_signing_hash(&consent_domain(devnet.chain_id, registry_address));
    let body = json!({
        "action": "grant",
        "user": user,
        "scope": scope,
        "expiry": grant.expiry,
        "nonce": grant.nonce.to_string(),
        "deadline": grant.deadline.to_string(),
        "signature": sign_digest(&viewer.wallet, &digest)?,
    });
    let queued = devnet.api.post("/v1/consent", None, &body).await?;
    Failure::expect_eq("consent request digest", digest, parsed::<B256>(&queued, "/digest")?)?;
    report.ok(format_args!(
        "signed an EIP-712 ConsentGrant for 24h; the API queued it for the relayer ({})",
        text(&queued, "/status")?
    ));

    let path = format!("/v1/consent/requests/{digest}");
    let confirmed = wait_for(
        report,
        "the relayer to land the consent",
        devnet.wait_timeout,
        POLL,
        async || {
            let request = devnet.api.get(&path, None).await?;
            match request["status"].as_str() {
                Some("confirmed") => Ok(Probe::Ready(request)),
                Some("failed") => Err(Failure::mismatch("consent request", "confirmed", &request)),
                status => Ok(Probe::Waiting(format!("status {status:?}"))),
            }
        },
    )
    .await?;
    report.ok(format_args!(
        "relayer sent it on chain in {}",
        text(&confirmed, "/txHash")?
    ));
    if !registry.hasConsent(user, scope).call().await? {
        return Err(Failure::mismatch("ConsentRegistry.hasConsent", true, false));
    }
    Failure::expect_eq(
        "viewer's ETH balance (gasless)",
        gas_money,
        devnet.chain.reader.get_balance(user).await?,
    )?;
    report.ok("ConsentRegistry.hasConsent is true; the viewer's ETH balance did not move");

    let path = format!("/v1/consent/{user}");
    wait_for(
        report,
        "the indexer to mirror the consent",
        devnet.wait_timeout,
        POLL,
        async || {
            let reply = devnet.api.send(Method::GET, &path, None, None).await?;
            let held = reply.body.as_array().into_iter().flatten().any(|record| {
                record["scope"].as_str().and_then(|s| s.parse::<B256>().ok()) == Some(scope)
                    && record["active"] == json!(true)
            });
            Ok(if held {
                Probe::Ready(())
            } else {
                Probe::Waiting(reply.body.to_string())
            })
        },
    )
    .await?;
    report.ok("API shows the consent active");
    Ok(())
}
