//! Referrals and affiliates: the operator opens a referral budget (sent by the treasury
//! through the outbox) and sets the rules; a referrer shares a link and an affiliate, once
//! approved, a code (fresh wallets each run); a newcomer signs up through the link and names
//! the code with its first campaign, which the demo's nodes serve and bill. The referrer's
//! bonus is paid from the budget, the affiliate's commission out of the platform's share,
//! held until that spend is settled on chain; then both are claimed with the API's proofs.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::advertiser::{self, Advertiser};
use super::api::{parsed, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::{self, Hosting};
use super::receipts;
use super::report::{Probe, Report, wait_for};
use super::viewer::Viewer;
use super::wallet::{self, confirm};
use crate::contracts::TestToken;

/// The bonus for one qualified referral: one whole token of six decimals.
const BONUS: u128 = 1_000_000;
/// The referral budget: five bonuses.
const BUDGET: u128 = 5 * BONUS;

/// What the programs paid, as claimed.
#[derive(Debug)]
pub struct Grown {
    pub bonus: u128,
    pub commission: u128,
}

pub async fn refer_and_attribute(
    devnet: &Devnet,
    report: &mut Report<'_>,
    operator: &PrivateKeySigner,
    sponsor: &Advertiser,
    hosting: &mut Hosting,
    viewer: &Viewer,
) -> Result<Grown> {
    let api = &devnet.api;
    // The operator is the devnet's treasury too: it must hold what the budget is funded with
    // (the test token mints to anyone, the devnet's stand-in for the platform's reserves).
    let erc20 = TestToken::new(devnet.token, sponsor.provider.clone());
    if erc20.balanceOf(operator.address()).call().await? < U256::from(BUDGET) {
        let pending = erc20.mint(operator.address(), U256::from(BUDGET)).send().await?;
        confirm(report, "TestToken.mint (to the treasury)", pending).await?;
    }
    let admin = wallet::sign_in(api, operator).await?;
    let admin = Some(admin.as_str());
    let ends_at = OffsetDateTime::now_utc() + time::Duration::days(30);
    let budget = api
        .post(
            "/v1/program-budgets",
            admin,
            &json!({
                "name": format!("Referral rewards {}", devnet.run),
                "token": devnet.token,
                "endsAt": ends_at.format(&Rfc3339).map_err(|e| Failure::Setup(e.to_string()))?,
                "amount": BUDGET.to_string(),
            }),
        )
        .await?;
    let budget_id = text(&budget, "/id")?.to_owned();
    report.ok(format_args!(
        "operator opened referral budget {budget_id} with {}; the treasury sends it through the outbox",
        devnet.units(BUDGET)
    ));
    // Every wallet of a devnet signs in from 127.0.0.1, so the network window is zero (a
    // referrer's earlier sign-ins do not count against its referee) and there is no cooldown.
    let rules = api
        .call(
            reqwest::Method::PUT,
            "/v1/admin/referrals/rules",
            admin,
            Some(&json!({
                "milestone": 1, "cooldownSecs": 0, "networkWindowSecs": 0, "requireNetwork": true,
                "tokens": [{ "token": devnet.token, "minBilled": "1", "minEarned": "1",
                             "bonus": BONUS.to_string(), "budgetId": budget_id }],
            })),
        )
        .await?;
    report.ok(format_args!(
        "referral rules version {}: a bonus of {} per qualified referral (devnet: no cooldown)",
        rules["version"],
        devnet.units(BONUS)
    ));

    // A referrer's link and an approved affiliate's code.
    let referrer = PrivateKeySigner::random();
    let referrer_session = wallet::sign_in(api, &referrer).await?;
    let mine = api.get("/v1/referrals/me", Some(&referrer_session)).await?;
    let link: url::Url = parsed(&mine, "/link")?;
    let invitation = link
        .query_pairs()
        .find(|(key, _)| key == "ref")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| Failure::mismatch("the referral link", "a ref parameter", &mine))?;
    report.ok(format_args!(
        "referrer {} shares code {} and a link valid until {}",
        referrer.address(),
        text(&mine, "/code")?,
        text(&mine, "/linkExpiresAt")?
    ));
    let affiliate = PrivateKeySigner::random();
    let session = wallet::sign_in(api, &affiliate).await?;
    let applied = api
        .post(
            "/v1/affiliates/me",
            Some(&session),
            &json!({ "reason": "Coffee bloggers' network" }),
        )
        .await?;
    let affiliate_id = text(&applied, "/userId")?.to_owned();
    api.post(
        &format!("/v1/admin/affiliates/{affiliate_id}/status"),
        admin,
        &json!({ "status": "active", "reason": "approved for the demo" }),
    )
    .await?;
    // The role came with the approval: a new session carries it.
    let affiliate_session = wallet::sign_in(api, &affiliate).await?;
    let code = api
        .post("/v1/affiliates/me/codes", Some(&affiliate_session), &json!({}))
        .await?;
    let code = text(&code, "/code")?.to_owned();
    report.ok(format_args!(
        "affiliate {} applied, was approved at {} bps, and shares code {code}",
        affiliate.address(),
        applied["rateBps"]
    ));

    // The newcomer: signed up through the link, attributed by its first campaign's code.
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
    let session = wallet::sign_in_with(api, &newcomer, Some(&invitation)).await?;
    api.post("/v1/me/roles", Some(&session), &json!({ "role": "advertiser" }))
        .await?;
    report.ok(format_args!(
        "newcomer {} signed up through the referral link",
        newcomer.address()
    ));
    let newcomer = Advertiser {
        provider: devnet.chain.wallet(&newcomer),
        wallet: newcomer,
        session,
    };
    let region = format!("{}-growth", devnet.run);
    let campaign = advertiser::create_campaign(devnet, report, &newcomer, &region, Some(&code)).await?;
    report.ok(format_args!(
        "its campaign named affiliate code {code}: attributed for 3 months"
    ));
    advertiser::fund(devnet, report, &newcomer, &campaign).await?;
    let tickets = hoster::decisions(devnet, report, hosting, viewer, &campaign).await?;
    let billed = receipts::submit(devnet, report, hosting, viewer, &tickets).await?;

    // The bonus: qualified once billed, paid from the budget once the treasury funded it.
    let snapshot = wait_for(
        report,
        "the referral to qualify and its bonus to be released",
        devnet.wait_timeout,
        POLL,
        async || {
            let snapshot = api.get("/v1/referrals/me/snapshot", Some(&referrer_session)).await?;
            let state = snapshot["bonuses"][0]["state"].clone();
            Ok(if state == json!("released") {
                Probe::Ready(snapshot)
            } else {
                Probe::Waiting(format!("qualified {}, bonus {state}", snapshot["qualified"]))
            })
        },
    )
    .await?;
    report.ok(format_args!(
        "referral qualified ({} of {}); bonus of {} released from the budget",
        snapshot["qualified"],
        snapshot["referrals"],
        devnet.units(BONUS)
    ));

    // The commission: 20% of the platform's share of each batch, held until it settles.
    let dashboard = wait_for(
        report,
        "the commission to accrue",
        devnet.wait_timeout,
        POLL,
        async || {
            let dashboard = api.get("/v1/affiliates/me/dashboard", Some(&affiliate_session)).await?;
            let count = dashboard["commissions"].as_array().map_or(0, Vec::len);
            Ok(if count == 2 {
                Probe::Ready(dashboard)
            } else {
                Probe::Waiting(format!("{count} commissions"))
            })
        },
    )
    .await?;
    let mut commission = 0;
    for accrued in dashboard["commissions"].as_array().into_iter().flatten() {
        let share: u128 = text(accrued, "/platformShare")?.parse().unwrap_or_default();
        let rate = accrued["rateBps"].as_u64().unwrap_or_default() as u128;
        let amount: u128 = text(accrued, "/amount")?.parse().unwrap_or_default();
        Failure::expect_eq(
            "a commission (floor of its rate of the platform's share)",
            share * rate / 10_000,
            amount,
        )?;
        commission += amount;
        report.ok(format_args!(
            "batch {}: {} of the platform's {}, {} ({})",
            accrued["batchId"],
            devnet.units(amount),
            devnet.units(share),
            accrued["state"],
            accrued["note"].as_str().unwrap_or("")
        ));
    }
    report.info(format_args!(
        "billed {} on the attributed campaign; commissions wait for an epoch to settle it",
        devnet.units(billed.spend)
    ));

    let mut paid = [0u128; 2];
    for (i, (account, owed, what)) in [
        (referrer.address(), BONUS, "the referrer's bonus to be claimable"),
        (
            affiliate.address(),
            commission,
            "the affiliate's commission to be settled and claimable",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/v1/payouts/{account}");
        let payout = wait_for(report, what, devnet.wait_timeout, POLL, async || {
            let payouts = api.get(&path, None).await?;
            let token = payouts["tokens"].get(0).cloned().unwrap_or(Value::Null);
            Ok(if token["claimable"] == json!(owed.to_string()) {
                Probe::Ready(token)
            } else {
                Probe::Waiting(format!("held {}, claimable {}", token["held"], token["claimable"]))
            })
        })
        .await?;
        let calldata: Bytes = parsed(&payout, "/calldata")?;
        let before = erc20.balanceOf(account).call().await?;
        let escrow = devnet.deployment.ad_escrow.address;
        let request = TransactionRequest::default().with_to(escrow).with_input(calldata);
        let pending = sponsor.provider.send_transaction(request).await?;
        confirm(report, "AdEscrow.claim (sent by the sponsor for the account)", pending).await?;
        paid[i] = (erc20.balanceOf(account).call().await? - before).to();
        Failure::expect_eq("the claimed token balance rise", owed, paid[i])?;
    }
    let dashboard = api.get("/v1/affiliates/me/dashboard", Some(&affiliate_session)).await?;
    report.ok(format_args!(
        "referrer's balance rose by {}, affiliate's by {}; the commissions now show {}",
        devnet.units(paid[0]),
        devnet.units(paid[1]),
        dashboard["commissions"][0]["state"]
    ));
    Ok(Grown {
        bonus: paid[0],
        commission: paid[1],
    })
}
