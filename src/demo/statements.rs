//! The hoster's earnings statement for this month, as its owner reads it: what each node
//! earned on each placement and the witness fees, between the opening and closing balances, and where every
//! amount stands now (held, released, in an epoch, claimable, claimed with its
//! transaction). Checks that the lines add up to the balances and the states to the lines.

use alloy::primitives::Address;
use serde_json::Value;

use super::api::{amount, text};
use super::devnet::{Devnet, POLL};
use super::error::{Failure, Result};
use super::hoster::Hosting;
use super::report::{Probe, Report, wait_for};

/// The entry of `token` in a list of per-token members.
fn of_token(list: &Value, token: Address) -> Option<&Value> {
    list.as_array()?
        .iter()
        .find(|t| t["token"].as_str().and_then(|a| a.parse::<Address>().ok()) == Some(token))
}

pub async fn show(devnet: &Devnet, report: &mut Report<'_>, hosting: &Hosting) -> Result<()> {
    let session = hosting.hoster.session.as_str();
    // The claim the previous step sent must show: the statement reads the chain's mirror.
    let statement = wait_for(
        report,
        "the hoster's statement to show its claim",
        devnet.wait_timeout,
        POLL,
        async || {
            let statement = devnet.api.get("/v1/statements/me", Some(session)).await?;
            let states = of_token(&statement["states"], devnet.token)
                .cloned()
                .unwrap_or_default();
            Ok(if states["claimedTx"].is_string() {
                Probe::Ready(statement)
            } else {
                Probe::Waiting(format!("claimed {}", states["claimed"]))
            })
        },
    )
    .await?;
    let body = &statement["statement"];
    report.ok(format_args!(
        "statement of {} for the {} from {} ({}): {}",
        text(body, "/payee")?,
        text(body, "/period")?,
        text(body, "/startsOn")?,
        text(body, "/zone")?,
        if statement["closed"] == Value::Bool(true) {
            "closed"
        } else {
            "open"
        }
    ));
    let lines = of_token(&body["tokens"], devnet.token)
        .ok_or_else(|| Failure::mismatch("the statement's token", "the devnet's token", body))?;
    let signed = |pointer: &str| -> Result<i128> {
        let value = text(lines, pointer)?;
        value
            .parse()
            .map_err(|_| Failure::mismatch(format!("member {pointer}"), "a signed amount", value))
    };
    let (opening, closing) = (signed("/opening")?, signed("/closing")?);
    report.ok(format_args!("opening balance {}", units(devnet, opening)));
    let mut earned = 0;
    for line in lines["lines"].as_array().into_iter().flatten() {
        let value: i128 = text(line, "/amount")?.parse().unwrap_or_default();
        earned += value;
        let node = line["nodeName"]
            .as_str()
            .map(|name| format!(" on node {name}"))
            .unwrap_or_default();
        let placement = line["placementName"]
            .as_str()
            .map(|name| format!(", placement {name}"))
            .unwrap_or_default();
        let kind = text(line, "/line")?;
        // Every ad the demo's nodes bill was decided for a placement.
        if kind == "ad_revenue" && placement.is_empty() {
            return Err(Failure::mismatch("an ad revenue line", "its placement", line));
        }
        report.ok(format_args!("  {kind}{node}{placement}: {}", units(devnet, value)));
    }
    report.ok(format_args!("closing balance {}", units(devnet, closing)));
    Failure::expect_eq("the statement's lines against its balances", closing - opening, earned)?;

    let states = of_token(&statement["states"], devnet.token)
        .ok_or_else(|| Failure::mismatch("the statement's states", "the devnet's token", &statement))?;
    let mut placed: u128 = 0;
    for held in states["held"].as_array().into_iter().flatten() {
        let value = amount(held, "/amount")?;
        placed += value;
        report.ok(format_args!(
            "  held {} ({}, {})",
            devnet.units(value),
            text(held, "/reason")?,
            text(held, "/note")?
        ));
    }
    let released = amount(states, "/released")?;
    report.ok(format_args!("  released, in no epoch yet: {}", devnet.units(released)));
    if let Some(epoch) = states["inEpoch"].as_object().map(|_| &states["inEpoch"]) {
        let value = amount(epoch, "/amount")?;
        placed += value;
        report.ok(format_args!(
            "  in epoch {}, waiting for its challenge window: {}",
            epoch["epoch"],
            devnet.units(value)
        ));
    }
    let (claimable, claimed) = (amount(states, "/claimable")?, amount(states, "/claimed")?);
    placed += released + claimable + claimed;
    report.ok(format_args!("  claimable: {}", devnet.units(claimable)));
    report.ok(format_args!(
        "  claimed: {} (transaction {})",
        devnet.units(claimed),
        text(states, "/claimedTx")?
    ));
    Failure::expect_eq(
        "the states against what the period earned",
        u128::try_from(earned).unwrap_or_default(),
        placed,
    )?;
    Ok(())
}

fn units(devnet: &Devnet, value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{}", devnet.units(value.unsigned_abs()))
}
