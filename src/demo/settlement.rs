//! Settlement and the claim: wait for the relayer to settle an epoch that covers the
//! hoster's earnings, check it on chain and in the mirror, then claim with the proof and
//! calldata the API serves and see the hoster's token balance rise by exactly the amount
//! owed. A replay of the same proof pays nothing.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use serde_json::{Value, json};

use super::advertiser::DemoCampaign;
use super::api::{amount, parsed, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::Hosting;
use super::receipts::Billed;
use super::report::{Probe, Report, wait_for};
use super::wallet::confirm;
use crate::contracts::{AdEscrow, TestToken};

/// The hoster's payout once an epoch covers everything it earned.
#[derive(Debug)]
pub struct Settled {
    pub epoch: u64,
    pub cumulative: u128,
}

/// The token's entry of a payouts answer.
fn token_payout(payouts: &Value, token: Address) -> Option<&Value> {
    payouts["tokens"]
        .as_array()?
        .iter()
        .find(|t| t["token"].as_str().and_then(|a| a.parse::<Address>().ok()) == Some(token))
}

pub async fn wait_for_epoch(
    devnet: &Devnet,
    report: &mut Report<'_>,
    hosting: &Hosting,
    campaign: &DemoCampaign,
    billed: &Billed,
) -> Result<Settled> {
    let account = hosting.hoster.wallet.address();
    let path = format!("/v1/payouts/{account}");
    let expected = billed.hoster_earned.to_string();
    report.info("the relayer closes an epoch once the oldest unsettled posting is an epoch interval old");
    let payouts = wait_for(
        report,
        "an epoch covering the hoster's earnings",
        devnet.wait_timeout,
        POLL,
        async || {
            let payouts = devnet.api.get(&path, None).await?;
            let entry = token_payout(&payouts, devnet.token);
            let (cumulative, pending) = (
                entry.map(|t| t["cumulative"].clone()),
                entry.map(|t| t["pending"].clone()),
            );
            Ok(
                if cumulative == Some(json!(expected)) && pending == Some(json!("0")) && payouts["epoch"].is_u64() {
                    Probe::Ready(payouts)
                } else {
                    Probe::Waiting(format!(
                        "epoch {}, cumulative {}, pending {}",
                        payouts["epoch"],
                        cumulative.unwrap_or_default(),
                        pending.unwrap_or_default()
                    ))
                },
            )
        },
    )
    .await?;
    let epoch = payouts["epoch"].as_u64().unwrap_or_default();
    let root: B256 = parsed(&payouts, "/root")?;
    report.ok(format_args!("epoch {epoch} settled: payout root {root}"));

    let escrow = AdEscrow::new(devnet.deployment.ad_escrow.address, devnet.chain.reader.clone());
    let state = escrow.settlementState().call().await?;
    if state.lastEpoch < epoch {
        return Err(Failure::mismatch(
            "last epoch on chain",
            format!("at least {epoch}"),
            state.lastEpoch,
        ));
    }
    // The escrow keeps the high 128 bits of each token's current and previous root.
    let claimable = escrow.tokenState(devnet.token).call().await?;
    let half = FixedBytes::<16>::from_slice(&root[..16]);
    if claimable.root != half && claimable.previousRoot != half {
        return Err(Failure::mismatch(
            "the token's claimable roots on chain (high 128 bits)",
            half,
            format!("{} and {}", claimable.root, claimable.previousRoot),
        ));
    }
    let settlements = devnet.api.get("/v1/escrow/settlements?limit=10", None).await?;
    if let Some(settlement) = settlements
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["epoch"].as_u64() == Some(epoch))
    {
        report.ok(format_args!(
            "on chain: AdEscrow.settle in {} ({} in the mirror), root claimable now",
            text(settlement, "/txHash")?,
            text(settlement, "/status")?
        ));
    }

    let path = format!("/v1/escrow/campaigns/{}", campaign.chain_id);
    let debited = billed.spend.to_string();
    let mirrored = wait_for(
        report,
        "the indexer to mirror the debit",
        devnet.wait_timeout,
        POLL,
        async || {
            let reply = devnet.api.get(&path, None).await?;
            Ok(if reply["debited"] == json!(debited) {
                Probe::Ready(reply)
            } else {
                Probe::Waiting(format!("debited {}", reply["debited"]))
            })
        },
    )
    .await?;
    report.ok(format_args!(
        "the settlement debited {} from the campaign's escrow; {} remains",
        devnet.units(billed.spend),
        devnet.units(amount(&mirrored, "/remaining")?)
    ));
    Ok(Settled {
        epoch,
        cumulative: billed.hoster_earned,
    })
}

/// Claims the hoster's payout with the API's calldata; returns what it paid.
pub async fn claim(devnet: &Devnet, report: &mut Report<'_>, hosting: &Hosting, settled: &Settled) -> Result<u128> {
    let account = hosting.hoster.wallet.address();
    let escrow = devnet.deployment.ad_escrow.address;
    let path = format!("/v1/payouts/{account}");
    // The escrow knows the payee by its index: what it has claimed is `claimed(index)`.
    let index = wait_for(
        report,
        "the hoster's payee index",
        devnet.wait_timeout,
        POLL,
        async || {
            let payouts = devnet.api.get(&path, None).await?;
            let entry = token_payout(&payouts, devnet.token).cloned().unwrap_or_default();
            Ok(match entry["index"].as_u64() {
                Some(index) => Probe::Ready(index),
                None => Probe::Waiting(format!("index {}", entry["index"])),
            })
        },
    )
    .await?;
    let already: u128 = AdEscrow::new(escrow, devnet.chain.reader.clone())
        .claimed(U256::from(index))
        .call()
        .await?
        .to();
    let owed = settled.cumulative - already;
    let payout = wait_for(
        report,
        "the API's claimable amount",
        devnet.wait_timeout,
        POLL,
        async || {
            let payouts = devnet.api.get(&path, None).await?;
            let entry = token_payout(&payouts, devnet.token).cloned().unwrap_or_default();
            Ok(if entry["claimable"] == json!(owed.to_string()) {
                Probe::Ready(entry)
            } else {
                Probe::Waiting(format!("claimable {}", entry["claimable"]))
            })
        },
    )
    .await?;
    let calldata: Bytes = parsed(&payout, "/calldata")?;
    let proof = payout["proof"].as_array().map_or(0, Vec::len);
    report.ok(format_args!(
        "API: payee index {index}, cumulative {}, claimed {}, claimable {}, proof of {proof} hashes and ready calldata",
        devnet.units(settled.cumulative),
        devnet.units(already),
        devnet.units(owed)
    ));

    let erc20 = TestToken::new(devnet.token, devnet.chain.reader.clone());
    let wallet = devnet.chain.wallet(&hosting.hoster.wallet);
    let send = async |report: &mut Report<'_>, what| -> Result<U256> {
        let before = erc20.balanceOf(account).call().await?;
        let request = TransactionRequest::default()
            .with_to(escrow)
            .with_input(calldata.clone());
        let pending = wallet.send_transaction(request).await?;
        confirm(report, what, pending).await?;
        Ok(erc20.balanceOf(account).call().await? - before)
    };
    let paid: u128 = send(report, "AdEscrow.claim").await?.to();
    Failure::expect_eq("hoster's token balance rise", owed, paid)?;
    report.ok(format_args!("hoster's balance rose by {}", devnet.units(paid)));
    let replay: u128 = send(report, "AdEscrow.claim (same proof again)").await?.to();
    Failure::expect_eq("a replayed claim's payment", 0, replay)?;
    report.ok("the same proof again pays nothing: claims are cumulative");

    wait_for(
        report,
        "the indexer to mirror the claim",
        devnet.wait_timeout,
        POLL,
        async || {
            let payouts = devnet.api.get(&path, None).await?;
            let entry = token_payout(&payouts, devnet.token).cloned().unwrap_or_default();
            Ok(
                if entry["claimable"] == json!("0") && entry["claimed"] == json!(settled.cumulative.to_string()) {
                    Probe::Ready(())
                } else {
                    Probe::Waiting(format!(
                        "claimed {}, claimable {}",
                        entry["claimed"], entry["claimable"]
                    ))
                },
            )
        },
    )
    .await?;
    report.ok("API shows everything claimed, nothing claimable");
    Ok(paid)
}
