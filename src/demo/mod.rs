//! `adescrow demo`: the whole loop against a running devnet, through the public API and
//! real transactions, printing each step. An advertiser signs in with SIWE, sets up a
//! campaign and funds its escrow with a permit; a viewer grants consent without gas;
//! two hoster nodes take decisions and submit receipt batches co-signed by a witness (and
//! some that are refused, with the reasons); a hoster node and a witness node run for real
//! and the witness co-signs only what it saw; the relayer settles an epoch; the hoster claims
//! with the API's proof; the advertiser ends the campaign and withdraws what is left after
//! the grace period.
//!
//! Every step checks what it sees against what the scenario expects and fails with a
//! [`DemoError`] naming the step otherwise, so the demo doubles as the end-to-end test
//! (`tests/it/demo.rs` runs [`run`] against a devnet it starts itself).
//!
//! Each run uses fresh names (its own targeting region and consent scope), so it can run
//! again and again against the same devnet; the accounts are reused.

pub mod accounts;
mod advertiser;
mod api;
mod devnet;
mod economics;
mod error;
mod growth;
mod hoster;
mod market;
mod offers;
mod receipts;
mod refund;
pub mod report;
mod settlement;
mod statements;
mod viewer;
mod wallet;
mod witnessing;

use std::io::Write;
use std::time::Duration;

use url::Url;

pub use accounts::DemoAccounts;
pub use economics::Economics;
pub use error::{DemoError, Failure};
use report::{Report, Step};

use crate::platform::config::DemoArgs;
use crate::platform::deploy::Deployment;

/// Everything a demo run needs to know.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Base URL of the API (the devnet's `serve`).
    pub api_url: Url,
    /// JSON-RPC URL of the chain the deployment is on.
    pub rpc_url: Url,
    /// The devnet's deployment: it must include the test token.
    pub deployment: Deployment,
    pub accounts: DemoAccounts,
    /// Prices, budget and the split the devnet's API is configured with.
    pub economics: Economics,
    /// How long any one wait (indexer, scheduler, relayer, epoch) may take.
    pub wait_timeout: Duration,
    /// Grace periods up to this long are waited out in real time; longer ones are skipped by
    /// advancing anvil's clock, which only a devnet allows.
    pub max_grace_wait: Duration,
}

impl DemoConfig {
    /// The configuration `adescrow demo` was given: reads the deployment file and takes
    /// anvil's development accounts for every key not given.
    pub fn from_args(args: &DemoArgs) -> Result<Self, Failure> {
        let split_witnessed: [u32; 3] = args
            .split_witnessed
            .as_slice()
            .try_into()
            .ok()
            .filter(|split: &[u32; 3]| split.iter().sum::<u32>() == 10_000)
            .ok_or_else(|| Failure::Setup("--split-witnessed takes three basis points summing to 10000".into()))?;
        Ok(Self {
            api_url: args.api_url.clone(),
            rpc_url: args.rpc_url.clone(),
            deployment: Deployment::load(&args.deployment)?,
            accounts: DemoAccounts::from_args(args)?,
            economics: Economics {
                split_witnessed,
                ..Economics::default()
            },
            wait_timeout: args.wait_timeout,
            max_grace_wait: args.max_grace_wait,
        })
    }
}

/// What a successful run moved, in token base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The settlement epoch that paid the hoster.
    pub epoch: u64,
    /// Spend billed to the campaign (and debited from its escrow).
    pub billed: u128,
    /// What the hoster's claim paid.
    pub claimed: u128,
    /// What the advertiser withdrew.
    pub refunded: u128,
    /// What the marketplace sale paid its seller.
    pub sold: u128,
    /// What the referrer's bonus paid.
    pub bonus: u128,
    /// What the affiliate's commissions paid.
    pub commission: u128,
    /// The promo credit the treasury funded the newcomer's campaign with.
    pub credit: u128,
    /// The reseller's markup on its advertiser's spend.
    pub markup: u128,
}

/// Runs the scenario once, printing to `out`.
pub async fn run(config: &DemoConfig, out: &mut (dyn Write + Send)) -> Result<Outcome, DemoError> {
    let mut report = Report::new(out);
    report.say("adescrow demo: the whole loop on a devnet (accounts and keys are devnet-only)");
    // Prints the step's heading before its future starts, and tags its failure with the step.
    macro_rules! step {
        ($step:expr, $body:expr) => {{
            report.begin($step);
            $body.await.map_err(|failure| DemoError { step: $step, failure })?
        }};
    }

    let devnet = step!(Step::Devnet, devnet::check(config, &mut report));
    let advertiser = step!(
        Step::AdvertiserSignIn,
        advertiser::sign_in(&devnet, &mut report, &config.accounts.advertiser)
    );
    let campaign = step!(
        Step::CampaignSetup,
        advertiser::create_campaign(&devnet, &mut report, &advertiser, &devnet.run, None)
    );
    step!(
        Step::Funding,
        advertiser::fund(&devnet, &mut report, &advertiser, &campaign)
    );
    let mut hosting = step!(Step::Nodes, hoster::register(&devnet, &mut report, &config.accounts));
    let viewer = step!(
        Step::ConsentMissing,
        viewer::without_consent(&devnet, &mut report, &config.accounts.viewer, &hosting, &campaign)
    );
    step!(Step::Consent, viewer::grant_consent(&devnet, &mut report, &viewer));
    let tickets = step!(
        Step::Decisions,
        hoster::decisions(&devnet, &mut report, &hosting, &viewer, &campaign)
    );
    let mut billed = step!(
        Step::Receipts,
        receipts::submit(&devnet, &mut report, &mut hosting, &viewer, &tickets)
    );
    step!(
        Step::Refusals,
        receipts::refused(&devnet, &mut report, &mut hosting, &viewer, &tickets, &billed)
    );
    step!(
        Step::Witnessing,
        witnessing::run_nodes(
            &devnet,
            &mut report,
            &config.api_url,
            &hosting,
            &viewer,
            &campaign,
            &mut billed
        )
    );
    let settled = step!(
        Step::Settlement,
        settlement::wait_for_epoch(&devnet, &mut report, &hosting, &campaign, &billed)
    );
    let claimed = step!(Step::Claim, settlement::claim(&devnet, &mut report, &hosting, &settled));
    step!(Step::Statement, statements::show(&devnet, &mut report, &hosting));
    // Before the campaign ends: a long grace period moves anvil's clock ahead of the API's,
    // and an order's escrow ends by the API's clock.
    let sold = step!(
        Step::Marketplace,
        market::buy_and_claim(&devnet, &mut report, &advertiser)
    );
    let grown = step!(
        Step::Growth,
        growth::refer_and_attribute(
            &devnet,
            &mut report,
            &config.accounts.operator,
            &advertiser,
            &mut hosting,
            &viewer
        )
    );
    let offered = step!(
        Step::Offers,
        offers::credit_and_resell(
            &devnet,
            &mut report,
            &config.accounts.operator,
            &advertiser,
            &mut hosting,
            &viewer
        )
    );
    let withdrawable_at = step!(
        Step::EndCampaign,
        refund::end_campaign(&devnet, &mut report, &advertiser, &campaign)
    );
    let refunded = step!(
        Step::Withdraw,
        refund::withdraw(
            &devnet,
            &mut report,
            &advertiser,
            &campaign,
            billed.spend,
            withdrawable_at
        )
    );

    report.say(format_args!(
        "\ndemo complete: billed {}, settled in epoch {}, hoster claimed {}, seller {} claimed {}, \
         referrer {} and affiliate {} claimed, a promo credit of {} funded a reseller's advertiser \
         (markup {}), advertiser got {} back",
        devnet.units(billed.spend),
        settled.epoch,
        devnet.units(claimed),
        sold.seller,
        devnet.units(sold.proceeds),
        devnet.units(grown.bonus),
        devnet.units(grown.commission),
        devnet.units(offered.credit),
        devnet.units(offered.markup),
        devnet.units(refunded)
    ));
    Ok(Outcome {
        epoch: settled.epoch,
        billed: billed.spend,
        claimed,
        refunded,
        sold: sold.proceeds,
        bonus: grown.bonus,
        commission: grown.commission,
        credit: offered.credit,
        markup: offered.markup,
    })
}
