//! The advertiser's side: sign in, set up a brand, campaign, ad set and ad over the API,
//! fund the escrow with an EIP-2612 permit in one transaction, and at the end close the
//! campaign and take back what it did not spend once the grace period is over.

use alloy::primitives::aliases::U40;
use alloy::primitives::{B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct};
use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api::{amount, parsed, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::report::{Probe, Report, wait_for};
use super::wallet::{self, confirm};
use crate::contracts::{AdEscrow, TestToken};

sol! {
    /// EIP-2612's permit, as `ERC20Permit.permit` checks it.
    #[derive(Debug)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// How long the demo's campaign would run if nobody ended it.
const CAMPAIGN_DAYS: i64 = 1;

#[derive(Debug)]
pub struct Advertiser {
    pub wallet: PrivateKeySigner,
    pub provider: DynProvider,
    pub session: String,
}

/// The campaign as both sides know it.
#[derive(Debug)]
pub struct DemoCampaign {
    pub id: String,
    /// Its id in the escrow contract.
    pub chain_id: B256,
    pub ad: String,
    /// The only region it targets: this run's tag.
    pub region: String,
    pub ends_at: OffsetDateTime,
}

pub async fn sign_in(devnet: &Devnet, report: &mut Report<'_>, wallet: &PrivateKeySigner) -> Result<Advertiser> {
    let session = wallet::sign_in(&devnet.api, wallet).await?;
    report.ok(format_args!(
        "signed in as {} (EIP-4361 message, personal_sign)",
        wallet.address()
    ));
    let me = devnet
        .api
        .post("/v1/me/roles", Some(&session), &json!({ "role": "advertiser" }))
        .await?;
    let roles = me["roles"].as_array().cloned().unwrap_or_default();
    if !roles.contains(&json!("advertiser")) {
        return Err(Failure::mismatch(
            "roles after taking one",
            "advertiser among them",
            &me["roles"],
        ));
    }
    report.ok(format_args!("holds the roles {}", me["roles"]));
    Ok(Advertiser {
        wallet: wallet.clone(),
        provider: devnet.chain.wallet(wallet),
        session,
    })
}

/// Creates a brand, a campaign targeting `region` (and naming `affiliate_code`, when given),
/// an ad set and an ad, and schedules the campaign.
pub async fn create_campaign(
    devnet: &Devnet,
    report: &mut Report<'_>,
    advertiser: &Advertiser,
    region: &str,
    affiliate_code: Option<&str>,
) -> Result<DemoCampaign> {
    let api = &devnet.api;
    let token = Some(advertiser.session.as_str());
    let economics = &devnet.economics;
    let brand = api
        .post(
            "/v1/brands",
            token,
            &json!({
                "name": format!("Demo Coffee {}", devnet.run),
                "dailyBudget": economics.budget.to_string(),
                "monthlyBudget": (economics.budget * 10).to_string(),
                "timeZone": "UTC",
            }),
        )
        .await?;
    let brand_id = text(&brand, "/id")?;
    report.ok(format_args!(
        "brand {brand_id} (UTC, daily budget {})",
        devnet.units(economics.budget)
    ));

    let now = OffsetDateTime::now_utc().unix_timestamp();
    // From the later of the two clocks: the escrow refuses an end its chain has passed, and
    // a devnet whose clock was advanced runs ahead of the wall.
    let ends_at = devnet.chain.deadline_base().await? as i64 + CAMPAIGN_DAYS * 86_400;
    let region = region.to_owned();
    let mut body = json!({
        "brandId": brand_id,
        "name": format!("Morning espresso {}", devnet.run),
        "token": devnet.token,
        "startsAt": rfc3339(now - 60)?,
        "endsAt": rfc3339(ends_at)?,
        "targeting": { "regions": [region], "consentScope": devnet.consent_scope() },
        // Above the default of 3 an hour: the demo's one viewer sees several ads.
        "frequencyCaps": { "impressionsPerHour": 50, "clicksPerHour": 10 },
        "priority": 100,
    });
    if let Some(code) = affiliate_code {
        body["affiliateCode"] = json!(code);
    }
    let campaign = api.post("/v1/campaigns", token, &body).await?;
    let id = text(&campaign, "/id")?.to_owned();
    let chain_id: B256 = parsed(&campaign, "/chainCampaignId")?;
    Failure::expect_eq("new campaign's status", "DRAFT", text(&campaign, "/status")?)?;
    report.ok(format_args!("campaign {id} (DRAFT), escrow id {chain_id}"));
    report.info(format_args!(
        "targets region {region} and viewers holding consent scope {}",
        devnet.consent_scope()
    ));

    let ad_set = api
        .post("/v1/ad-sets", token, &json!({ "campaignId": id, "name": "Mornings" }))
        .await?;
    let ad = api
        .post(
            "/v1/ads",
            token,
            &json!({
                "adSetId": text(&ad_set, "/id")?,
                "name": "Espresso banner",
                "creative": { "kind": "text", "title": "Espresso, 7 to 10", "clickUrl": "https://coffee.example/" },
                "prices": { "cpm": economics.cpm.to_string(), "cpc": economics.cpc.to_string() },
            }),
        )
        .await?;
    let ad = text(&ad, "/id")?.to_owned();
    report.ok(format_args!(
        "ad {ad}: {} per impression, {} per click",
        devnet.units(economics.impression_price()),
        devnet.units(economics.cpc)
    ));

    let scheduled = api
        .post(
            &format!("/v1/campaigns/{id}/status"),
            token,
            &json!({ "status": "SCHEDULED" }),
        )
        .await?;
    Failure::expect_eq("status after scheduling", "SCHEDULED", text(&scheduled, "/status")?)?;
    report.ok("campaign SCHEDULED; it starts once its escrow is funded");
    Ok(DemoCampaign {
        id,
        chain_id,
        ad,
        region,
        ends_at: OffsetDateTime::from_unix_timestamp(ends_at).map_err(|e| Failure::Setup(e.to_string()))?,
    })
}

pub async fn fund(
    devnet: &Devnet,
    report: &mut Report<'_>,
    advertiser: &Advertiser,
    campaign: &DemoCampaign,
) -> Result<()> {
    let budget = devnet.economics.budget;
    let owner = advertiser.wallet.address();
    let escrow = devnet.deployment.ad_escrow.address;
    let erc20 = TestToken::new(devnet.token, advertiser.provider.clone());
    let mut balance = erc20.balanceOf(owner).call().await?;
    if balance < U256::from(budget) {
        // The test token mints to anyone: the devnet's stand-in for buying stablecoins.
        let pending = erc20.mint(owner, U256::from(budget)).send().await?;
        confirm(report, "TestToken.mint", pending).await?;
        balance = erc20.balanceOf(owner).call().await?;
    }
    report.ok(format_args!("advertiser holds {}", devnet.units(balance.to())));

    let deadline = U256::from(devnet.chain.deadline_base().await? + 3_600);
    let permit = Permit {
        owner,
        spender: escrow,
        value: U256::from(budget),
        nonce: erc20.nonces(owner).call().await?,
        deadline,
    };
    let domain = erc20.eip712Domain().call().await?;
    let domain = Eip712Domain::new(
        Some(domain.name.into()),
        Some(domain.version.into()),
        Some(domain.chainId),
        Some(domain.verifyingContract),
        None,
    );
    let signature =
        alloy::signers::SignerSync::sign_hash_sync(&advertiser.wallet, &permit.eip712_signing_hash(&domain))?;
    report.ok(format_args!(
        "signed an EIP-2612 permit for {} to the escrow (no approve transaction)",
        devnet.units(budget)
    ));
    let end = U40::from(campaign.ends_at.unix_timestamp() as u64);
    let pending = AdEscrow::new(escrow, advertiser.provider.clone())
        .openCampaignWithPermit(
            campaign.chain_id,
            devnet.token,
            U256::from(budget),
            end,
            deadline,
            27 + u8::from(signature.v()),
            B256::from(signature.r()),
            B256::from(signature.s()),
        )
        .send()
        .await?;
    confirm(report, "AdEscrow.openCampaignWithPermit", pending).await?;
    let on_chain = AdEscrow::new(escrow, devnet.chain.reader.clone())
        .campaign(campaign.chain_id)
        .call()
        .await?;
    Failure::expect_eq("escrow remaining on chain", U256::from(budget), on_chain.remaining)?;
    Failure::expect_eq("escrow advertiser on chain", owner, on_chain.advertiser)?;
    report.ok(format_args!(
        "escrow holds {} for campaign {}",
        devnet.units(budget),
        campaign.chain_id
    ));

    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    let mirrored = wait_for(
        report,
        "the indexer to mirror the funding",
        devnet.wait_timeout,
        POLL,
        async || {
            let reply = devnet.api.send(Method::GET, &path, None, None).await?;
            Ok(match reply.body["funded"].as_str() {
                Some(funded) if reply.status.is_success() && funded == budget.to_string() => Probe::Ready(reply.body),
                _ => Probe::Waiting(format!("{} {}", reply.status, reply.body)),
            })
        },
    )
    .await?;
    report.ok(format_args!(
        "API shows the escrow funded with {} (block {})",
        devnet.units(amount(&mirrored, "/funded")?),
        mirrored["block"]
    ));

    let path = format!("/v1/campaigns/{}", campaign.id);
    let session = Some(advertiser.session.as_str());
    wait_for(
        report,
        "the scheduler to start the campaign",
        devnet.wait_timeout,
        POLL,
        async || {
            let current = devnet.api.get(&path, session).await?;
            Ok(match current["status"].as_str() {
                Some("RUNNING") => Probe::Ready(()),
                status => Probe::Waiting(format!("status {status:?}")),
            })
        },
    )
    .await?;
    report.ok("the scheduler moved the campaign to RUNNING");
    Ok(())
}

fn rfc3339(unix: i64) -> Result<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| Failure::Setup(e.to_string()))?
        .format(&Rfc3339)
        .map_err(|e| Failure::Setup(e.to_string()))
}
