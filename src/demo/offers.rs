//! Promotions and resellers: the operator funds a promotions budget and publishes a
//! first-time ad credit; an agency applies as a reseller and its contract is approved and
//! activated, with a volume tier on the platform's fee. A newcomer joins the agency by its
//! code, funds a campaign and redeems the credit: the treasury funds the campaign's escrow
//! on chain with it. The demo's nodes serve and bill the campaign, and the agency's markup
//! (the platform's share above its tier's fee) is moved to it through the ledger.

use alloy::network::TransactionBuilder;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::advertiser::{self, Advertiser};
use super::api::text;
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::{self, Hosting};
use super::receipts;
use super::report::{Probe, Report, wait_for};
use super::viewer::Viewer;
use super::wallet::{self, confirm};
use crate::contracts::{AdEscrow, TestToken};

/// The ad credit: two whole tokens of six decimals.
const CREDIT: u128 = 2_000_000;
/// The agency's tier: the platform keeps 2% of the price; the rest of its share is markup.
const FEE_BPS: u128 = 200;

/// What the programs moved.
#[derive(Debug)]
pub struct Offered {
    pub credit: u128,
    pub markup: u128,
}

pub async fn credit_and_resell(
    devnet: &Devnet,
    report: &mut Report<'_>,
    operator: &PrivateKeySigner,
    sponsor: &Advertiser,
    hosting: &mut Hosting,
    viewer: &Viewer,
) -> Result<Offered> {
    let api = &devnet.api;
    let setup = |e: time::error::Format| Failure::Setup(e.to_string());
    // The treasury funds the budget, then advances the credit to the campaign from its own
    // wallet (the budget repays it through the claim): it needs the credit twice.
    let erc20 = TestToken::new(devnet.token, sponsor.provider.clone());
    if erc20.balanceOf(operator.address()).call().await? < U256::from(2 * CREDIT) {
        let pending = erc20.mint(operator.address(), U256::from(2 * CREDIT)).send().await?;
        confirm(report, "TestToken.mint (to the treasury)", pending).await?;
    }
    let admin = wallet::sign_in(api, operator).await?;
    let admin = Some(admin.as_str());
    let now = OffsetDateTime::now_utc();
    let in_days = |days: i64| (now + time::Duration::days(days)).format(&Rfc3339).map_err(setup);

    // The promotions budget, funded by the treasury on chain before any credit is given.
    let budget = api
        .post(
            "/v1/program-budgets",
            admin,
            &json!({ "name": format!("Promotions {}", devnet.run), "token": devnet.token,
                     "endsAt": in_days(30)?, "amount": CREDIT.to_string() }),
        )
        .await?;
    let budget_id = text(&budget, "/id")?.to_owned();
    let path = format!("/v1/program-budgets/{budget_id}");
    wait_for(
        report,
        "the treasury to fund the promotions budget",
        devnet.wait_timeout,
        POLL,
        async || {
            let budget = api.get(&path, admin).await?;
            Ok(if budget["funded"] == json!(CREDIT.to_string()) {
                Probe::Ready(())
            } else {
                Probe::Waiting(format!("funded {}", budget["funded"]))
            })
        },
    )
    .await?;
    let promotion = api
        .post(
            "/v1/admin/promotions",
            admin,
            &json!({ "name": "Welcome credit", "startsAt": in_days(-1)?, "endsAt": in_days(30)?,
                     "offer": { "kind": "adCredit", "budget": budget_id, "credit": CREDIT.to_string() },
                     "firstTimeOnly": true, "maxRedemptions": 100, "publish": true }),
        )
        .await?;
    let code = text(&promotion, "/code")?.to_owned();
    report.ok(format_args!(
        "operator funded promotions budget {budget_id} and published {code}: a first-time credit of {}",
        devnet.units(CREDIT)
    ));

    // The agency: applies, drafts and submits its contract; the operator approves,
    // activates and prices it.
    let agency = PrivateKeySigner::random();
    let agency_session = wallet::sign_in(api, &agency).await?;
    let agency_token = Some(agency_session.as_str());
    let reseller = api
        .post(
            "/v1/resellers/me",
            agency_token,
            &json!({ "name": format!("North Agency {}", devnet.run), "application": "Coffee brands of the north" }),
        )
        .await?;
    let reseller_id = text(&reseller, "/id")?.to_owned();
    let contract = api
        .post(
            "/v1/resellers/me/contracts",
            agency_token,
            &json!({ "startsAt": in_days(-1)?, "endsAt": in_days(365)?, "terms": "2% platform fee; markup through the claim" }),
        )
        .await?;
    let contract_id = text(&contract, "/id")?.to_owned();
    api.post(
        &format!("/v1/resellers/me/contracts/{contract_id}/status"),
        agency_token,
        &json!({ "status": "pending_approval", "reason": "signed by the agency" }),
    )
    .await?;
    let mut active = json!(null);
    for status in ["approved", "active"] {
        active = api
            .post(
                &format!("/v1/admin/reseller-contracts/{contract_id}/status"),
                admin,
                &json!({ "status": status, "reason": "agreed with the operator" }),
            )
            .await?;
    }
    Failure::expect_eq("the contract's status", "active", text(&active, "/status")?)?;
    api.call(
        reqwest::Method::PUT,
        &format!("/v1/admin/resellers/{reseller_id}/tiers"),
        admin,
        Some(&json!({ "token": devnet.token, "effectiveFrom": now.date().to_string(),
                      "tiers": [{ "minVolume": "0", "feeBps": FEE_BPS }] })),
    )
    .await?;
    let reseller_code = text(&reseller, "/code")?.to_owned();
    report.ok(format_args!(
        "agency {} applied (code {reseller_code}); contract v1 went {} and the platform's fee is {FEE_BPS} bps",
        agency.address(),
        active["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["to"].as_str())
            .collect::<Vec<_>>()
            .join(" -> ")
    ));

    // The newcomer joins the agency and funds a campaign, then redeems the credit on it.
    let newcomer = PrivateKeySigner::random();
    let pending = sponsor
        .provider
        .send_transaction(
            TransactionRequest::default()
                .with_to(newcomer.address())
                .with_value(U256::from(10u128.pow(17))),
        )
        .await?;
    confirm(report, "a transfer of 0.1 ETH for the newcomer's gas", pending).await?;
    let session = wallet::sign_in(api, &newcomer).await?;
    api.post("/v1/me/roles", Some(&session), &json!({ "role": "advertiser" }))
        .await?;
    let joined = api
        .post("/v1/resellers/join", Some(&session), &json!({ "code": reseller_code }))
        .await?;
    report.ok(format_args!(
        "newcomer {} joined {} by its code",
        newcomer.address(),
        text(&joined, "/reseller")?
    ));
    let newcomer = Advertiser {
        provider: devnet.chain.wallet(&newcomer),
        wallet: newcomer,
        session,
    };
    let region = format!("{}-offers", devnet.run);
    let campaign = advertiser::create_campaign(devnet, report, &newcomer, &region, None).await?;
    advertiser::fund(devnet, report, &newcomer, &campaign).await?;
    let redeemed = api
        .post(
            &format!("/v1/promotions/{code}/redemptions"),
            Some(&newcomer.session),
            &json!({ "campaignId": campaign.id }),
        )
        .await?;
    report.ok(format_args!(
        "newcomer redeemed {code} on its campaign: credit {}",
        text(&redeemed, "/creditStatus")?
    ));
    let credited = wait_for(
        report,
        "the treasury to fund the campaign with the credit",
        devnet.wait_timeout,
        POLL,
        async || {
            let mine = api.get("/v1/me/promotions", Some(&newcomer.session)).await?;
            let status = mine[0]["creditStatus"].clone();
            Ok(if status == json!("confirmed") {
                Probe::Ready(mine[0].clone())
            } else {
                Probe::Waiting(format!("credit {status}"))
            })
        },
    )
    .await?;
    let escrow = AdEscrow::new(devnet.deployment.ad_escrow.address, devnet.chain.reader.clone());
    let on_chain = escrow.campaign(campaign.chain_id).call().await?;
    Failure::expect_eq(
        "the campaign's escrow: its own funding and the credit",
        U256::from(devnet.economics.budget + CREDIT),
        on_chain.remaining,
    )?;
    report.ok(format_args!(
        "the treasury's fund transaction {} put the credit in the campaign's escrow: {} on chain",
        text(&credited, "/creditTx")?,
        devnet.units(on_chain.remaining.to())
    ));

    // Served and billed: the agency's markup is the platform's share above its fee.
    let tickets = hoster::decisions(devnet, report, hosting, viewer, &campaign).await?;
    let billed = receipts::submit(devnet, report, hosting, viewer, &tickets).await?;
    let markups = wait_for(
        report,
        "the agency's markups to accrue",
        devnet.wait_timeout,
        POLL,
        async || {
            let dashboard = api.get("/v1/resellers/me", agency_token).await?;
            let markups = dashboard["markups"].as_array().cloned().unwrap_or_default();
            Ok(if markups.len() == 2 {
                Probe::Ready(markups)
            } else {
                Probe::Waiting(format!("{} markups", markups.len()))
            })
        },
    )
    .await?;
    let mut markup = 0;
    for accrued in &markups {
        let spend: u128 = text(accrued, "/spend")?.parse().unwrap_or_default();
        let share: u128 = text(accrued, "/platformShare")?.parse().unwrap_or_default();
        let amount: u128 = text(accrued, "/amount")?.parse().unwrap_or_default();
        Failure::expect_eq(
            "a markup (the platform's share above its fee)",
            share.saturating_sub(spend * FEE_BPS / 10_000),
            amount,
        )?;
        markup += amount;
    }
    report.ok(format_args!(
        "billed {} on the resold campaign; the agency's markup is {} of the platform's share, in the ledger to claim",
        devnet.units(billed.spend),
        devnet.units(markup)
    ));
    Ok(Offered { credit: CREDIT, markup })
}
