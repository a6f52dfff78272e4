//! What the demo prints: a numbered heading per step, indented results under it, and
//! progress lines while a step waits on the chain, the indexer or the relayer. Waiting is
//! always polling with a deadline, so a stuck devnet fails with what it last saw.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use super::error::{Failure, Result};

/// The scenario's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Devnet,
    AdvertiserSignIn,
    CampaignSetup,
    Funding,
    Nodes,
    ConsentMissing,
    Consent,
    Decisions,
    Receipts,
    Refusals,
    Witnessing,
    Settlement,
    Claim,
    Statement,
    Marketplace,
    Growth,
    Offers,
    EndCampaign,
    Withdraw,
}

impl Step {
    pub const ALL: [Step; 19] = [
        Step::Devnet,
        Step::AdvertiserSignIn,
        Step::CampaignSetup,
        Step::Funding,
        Step::Nodes,
        Step::ConsentMissing,
        Step::Consent,
        Step::Decisions,
        Step::Receipts,
        Step::Refusals,
        Step::Witnessing,
        Step::Settlement,
        Step::Claim,
        Step::Statement,
        Step::Marketplace,
        Step::Growth,
        Step::Offers,
        Step::EndCampaign,
        Step::Withdraw,
    ];

    fn number(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Devnet => "the devnet is up",
            Step::AdvertiserSignIn => "advertiser signs in with SIWE",
            Step::CampaignSetup => "advertiser creates a brand, a campaign and an ad",
            Step::Funding => "advertiser funds the escrow with a permit",
            Step::Nodes => "hoster and witness register their nodes",
            Step::ConsentMissing => "without consent, the campaign is not served",
            Step::Consent => "viewer grants consent gaslessly",
            Step::Decisions => "hoster nodes request decisions",
            Step::Receipts => "hoster nodes submit witnessed receipt batches",
            Step::Refusals => "bad receipts are refused with their reasons",
            Step::Witnessing => "a hoster node and a witness node: billed as witnessed for what the witness saw",
            Step::Settlement => "an epoch settles on chain",
            Step::Claim => "hoster claims with the proof from the API",
            Step::Statement => "hoster reads its earnings statement: each amount and where it stands",
            Step::Marketplace => "a buyer pays for an item from their wallet; the seller claims the sale",
            Step::Growth => "a referrer and an affiliate bring an advertiser; both claim what they earned",
            Step::Offers => "an agency resells the platform; a promo credit funds its advertiser's campaign on chain",
            Step::EndCampaign => "advertiser ends the campaign",
            Step::Withdraw => "advertiser withdraws the unspent budget after the grace period",
        })
    }
}

/// How often a waiting step reports that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// The demo's output. Write errors are ignored: a closed terminal must not fail a run
/// whose effects are on chain anyway.
pub struct Report<'a> {
    out: &'a mut (dyn Write + Send),
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report").finish_non_exhaustive()
    }
}

impl<'a> Report<'a> {
    pub fn new(out: &'a mut (dyn Write + Send)) -> Self {
        Self { out }
    }

    /// A free line, for the banner and the summary.
    pub fn say(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.out, "{text}");
    }

    pub fn begin(&mut self, step: Step) {
        let _ = writeln!(self.out, "\n[{:>2}/{}] {step}", step.number(), Step::ALL.len());
    }

    /// A result the step checked.
    pub fn ok(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.out, "        ok  {text}");
    }

    /// Something worth knowing that the step does not check (an address, a transaction).
    pub fn info(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.out, "            {text}");
    }

    fn progress(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.out, "        ..  {text}");
        let _ = self.out.flush();
    }
}

/// One look at something the demo waits for.
#[derive(Debug)]
pub enum Probe<T> {
    Ready(T),
    /// Not yet; what was seen, for the progress line and the timeout message.
    Waiting(String),
}

/// Polls `probe` every `every` until it is ready or `timeout` has passed, printing progress.
pub async fn wait_for<T>(
    report: &mut Report<'_>,
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<Probe<T>>,
) -> Result<T> {
    let started = Instant::now();
    let mut last_progress = started;
    loop {
        let seen = match probe().await? {
            Probe::Ready(value) => return Ok(value),
            Probe::Waiting(seen) => seen,
        };
        if started.elapsed() >= timeout {
            return Err(Failure::Timeout {
                what: what.to_owned(),
                after: timeout,
                seen,
            });
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            report.progress(format_args!(
                "waiting for {what}: {seen} ({}s)",
                started.elapsed().as_secs()
            ));
        }
        tokio::time::sleep(every).await;
    }
}
