//! A payee's statement as CSV, for spreadsheets and accountants: what the JSON says, one row
//! per balance, line and state.

use super::read::PayeeStatement;

/// A payee's statement as CSV: one row per balance, line and state.
pub fn write(statement: &PayeeStatement) -> Result<String, csv::Error> {
    let body = &statement.statement.body;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["token", "kind", "item", "node", "placement", "detail", "amount"])?;
    for token in &body.tokens {
        let t = token.token.to_checksum(None);
        out.write_record([t.as_str(), "balance", "opening", "", "", "", &token.opening.to_string()])?;
        for line in &token.lines {
            // Names where the node or placement still exists, ids otherwise.
            let node = line.node_name.clone().or(line.node.map(|n| n.to_string()));
            let placement = line.placement_name.clone().or(line.placement.map(|p| p.to_string()));
            out.write_record([
                t.as_str(),
                "line",
                line.line.label(),
                &node.unwrap_or_default(),
                &placement.unwrap_or_default(),
                "",
                &line.amount.to_string(),
            ])?;
        }
        out.write_record([t.as_str(), "balance", "closing", "", "", "", &token.closing.to_string()])?;
    }
    for states in &statement.states {
        let t = states.token.to_checksum(None);
        for held in &states.held {
            let until = held
                .until
                .and_then(|u| u.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            let detail = format!("{} until {until}", held.note);
            out.write_record([t.as_str(), "state", "held", "", "", &detail, &held.amount.to_string()])?;
        }
        out.write_record([
            t.as_str(),
            "state",
            "released",
            "",
            "",
            "",
            &states.released.to_string(),
        ])?;
        if let Some(epoch) = &states.in_epoch {
            let detail = format!("epoch {}", epoch.epoch);
            out.write_record([
                t.as_str(),
                "state",
                "in_epoch",
                "",
                "",
                &detail,
                &epoch.amount.to_string(),
            ])?;
        }
        out.write_record([
            t.as_str(),
            "state",
            "claimable",
            "",
            "",
            "",
            &states.claimable.to_string(),
        ])?;
        let tx = states.claimed_tx.map(|tx| tx.to_string()).unwrap_or_default();
        out.write_record([t.as_str(), "state", "claimed", "", "", &tx, &states.claimed.to_string()])?;
    }
    let bytes = out.into_inner().map_err(|error| csv::Error::from(error.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
