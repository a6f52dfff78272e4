//! The campaign's end: the advertiser completes it over the API and closes its escrow on
//! chain, is refused a withdrawal during the grace period (which protects the campaign's
//! last settlement), and afterwards takes back exactly the unspent budget, with no operator
//! involved.

use alloy::providers::ext::AnvilApi;
use serde_json::json;
use time::OffsetDateTime;

use super::advertiser::{Advertiser, DemoCampaign};
use super::api::text;
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::report::{Probe, Report, wait_for};
use super::wallet::confirm;
use crate::contracts::{AdEscrow, TestToken};

/// Completes the campaign off chain and closes its escrow on chain; returns when the
/// unspent budget becomes withdrawable (unix seconds), after showing that it is not yet.
pub async fn end_campaign(
    devnet: &Devnet,
    report: &mut Report<'_>,
    advertiser: &Advertiser,
    campaign: &DemoCampaign,
) -> Result<i64> {
    let completed = devnet
        .api
        .post(
            &format!("/v1/campaigns/{}/status", campaign.id),
            Some(&advertiser.session),
            &json!({ "status": "COMPLETED", "reason": "demo over" }),
        )
        .await?;
    Failure::expect_eq("status after ending", "COMPLETED", text(&completed, "/status")?)?;
    report.ok("campaign COMPLETED: the ad server stops serving it");

    let escrow = AdEscrow::new(devnet.deployment.ad_escrow.address, advertiser.provider.clone());
    let pending = escrow.closeCampaign(campaign.chain_id).send().await?;
    confirm(report, "AdEscrow.closeCampaign", pending).await?;

    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    let mirrored = wait_for(
        report,
        "the indexer to mirror the close",
        devnet.wait_timeout,
        POLL,
        async || {
            let reply = devnet.api.get(&path, None).await?;
            Ok(if reply["closedEarly"] == json!(true) {
                Probe::Ready(reply)
            } else {
                Probe::Waiting(reply.to_string())
            })
        },
    )
    .await?;
    let end = mirrored["end"].as_i64().unwrap_or_default();
    let withdrawable_at = mirrored["withdrawableAt"]
        .as_i64()
        .ok_or_else(|| Failure::mismatch("withdrawableAt", "a time", &mirrored))?;
    Failure::expect_eq("withdrawableAt", end + devnet.grace_period as i64, withdrawable_at)?;
    report.ok(format_args!(
        "escrow closed at {end}; the rest is withdrawable from {withdrawable_at} (end + {}s grace)",
        devnet.grace_period
    ));

    // A withdrawal now is refused by the contract itself: the grace period protects the
    // campaign's last settlement.
    let early = escrow
        .withdraw(campaign.chain_id)
        .from(advertiser.wallet.address())
        .call()
        .await;
    match early {
        Err(error) => match error.as_decoded_interface_error::<AdEscrow::AdEscrowErrors>() {
            Some(AdEscrow::AdEscrowErrors::AdEscrowWithdrawTooEarly(refusal)) => {
                report.ok(format_args!(
                    "withdrawing now is refused: AdEscrowWithdrawTooEarly(availableAt {})",
                    refusal.availableAt
                ));
            }
            _ => return Err(Failure::mismatch("early withdrawal", "AdEscrowWithdrawTooEarly", error)),
        },
        Ok(amount) => {
            return Err(Failure::mismatch(
                "early withdrawal",
                "AdEscrowWithdrawTooEarly",
                format!("it would pay {amount}"),
            ));
        }
    }
    Ok(withdrawable_at)
}

/// Waits out the grace period (or, on anvil and when it is long, advances the chain's clock
/// past it) and withdraws; checks that exactly the unspent budget comes back.
pub async fn withdraw(
    devnet: &Devnet,
    report: &mut Report<'_>,
    advertiser: &Advertiser,
    campaign: &DemoCampaign,
    spent: u128,
    withdrawable_at: i64,
) -> Result<u128> {
    let withdrawable_at = withdrawable_at.max(0) as u64;
    let left = withdrawable_at.saturating_sub(devnet.chain.deadline_base().await?);
    if left > devnet.max_grace_wait.as_secs() {
        if !devnet.anvil {
            return Err(Failure::Setup(format!(
                "the grace period ends in {left}s, longer than the {}s the demo waits, and this chain \
                 is not anvil, whose clock it could advance",
                devnet.max_grace_wait.as_secs()
            )));
        }
        report.info(format_args!(
            "devnet only: advancing anvil's clock by {}s (anvil_increaseTime) instead of waiting",
            left + 1
        ));
        devnet.chain.reader.anvil_increase_time(left + 1).await?;
        devnet.chain.reader.evm_mine(None).await?;
    } else if left > 0 {
        report.info(format_args!("waiting {left}s for the grace period to end"));
        // Waiting on the wall clock, since a devnet mines no block to move its own until a
        // transaction comes; the withdrawal's block then carries a time past the grace period.
        wait_for(
            report,
            "the grace period to end",
            devnet.max_grace_wait * 2,
            POLL,
            async || {
                let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
                Ok(if now > withdrawable_at {
                    Probe::Ready(())
                } else {
                    Probe::Waiting(format!("{}s left", withdrawable_at - now))
                })
            },
        )
        .await?;
    }

    let owner = advertiser.wallet.address();
    let erc20 = TestToken::new(devnet.token, devnet.chain.reader.clone());
    let before = erc20.balanceOf(owner).call().await?;
    // A fixed gas limit: an estimate made against the last block's (older) time would still
    // see the grace period running.
    let pending = AdEscrow::new(devnet.deployment.ad_escrow.address, advertiser.provider.clone())
        .withdraw(campaign.chain_id)
        .gas(150_000)
        .send()
        .await?;
    confirm(report, "AdEscrow.withdraw", pending).await?;
    let after = erc20.balanceOf(owner).call().await?;
    let refunded: u128 = (after - before).to();
    let expected = devnet.economics.budget - spent;
    Failure::expect_eq("advertiser's refund (budget - spend)", expected, refunded)?;
    report.ok(format_args!(
        "advertiser's balance rose by {} = budget {} - spend {}",
        devnet.units(refunded),
        devnet.units(devnet.economics.budget),
        devnet.units(spent)
    ));

    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    wait_for(
        report,
        "the indexer to mirror the withdrawal",
        devnet.wait_timeout,
        POLL,
        async || {
            let reply = devnet.api.get(&path, None).await?;
            Ok(
                if reply["remaining"] == json!("0") && reply["withdrawn"] == json!(expected.to_string()) {
                    Probe::Ready(())
                } else {
                    Probe::Waiting(reply.to_string())
                },
            )
        },
    )
    .await?;
    report.ok("API shows the escrow withdrawn, nothing remaining");
    Ok(refunded)
}
