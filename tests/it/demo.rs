//! The demo is the end-to-end test: a devnet started here (anvil; the contracts and the
//! test token deployed by `adescrow deploy`'s code; `adescrow serve`'s own code running the
//! API with the indexer, the relayer and the scheduler on a random port over a database of
//! its own) and the same scenario `adescrow demo` runs against `scripts/dev`. The scenario
//! fails at the first step whose result is not what it expects; here it must succeed with
//! exactly the amounts the campaign's prices and the split imply.

use std::time::Duration;

use adescrow::demo::report::Step;
use adescrow::demo::{self, Economics, Failure, Outcome};
use adescrow::platform::db::MIGRATOR;
use sqlx::PgPool;

use crate::support::devnet::Devnet;

/// What one run bills and pays with the default economics: five witnessed impressions at
/// 1,000 units and one click at 50,000 from the signed batches, then the nodes' page: two
/// impressions and a click the witness confirmed, and one impression it did not see. The
/// hoster gets 90% of the witnessed and 50% of the unwitnessed; the advertiser the budget
/// less the spend.
const HOSTER_PER_RUN: u128 = 49_500 + 46_800 + 500;

fn expected(epoch: u64) -> Outcome {
    Outcome {
        epoch,
        billed: 55_000 + 53_000,
        claimed: HOSTER_PER_RUN,
        refunded: 100_000_000 - 108_000,
        // The seller's 85% of the item's 5,000,000.
        sold: 4_250_000,
        // One qualified referral's bonus, and 20% of the platform's share of the attributed
        // campaign's spend: 9% of it, less the viewer's 5% reward on the click (2,500), in
        // two batches: 20% of 2,270 (3 impressions and the click) + 20% of 180.
        bonus: 1_000_000,
        commission: 490,
        // The newcomer's first-time credit of two tokens, and the agency's markup: the same
        // batches' platform shares above its 2% fee: (2,270 - 1,060) + (180 - 40).
        credit: 2_000_000,
        markup: 1_350,
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_demo_runs_the_whole_loop_and_again_on_the_same_devnet(pool: PgPool) {
    // A grace period the demo waits out in real time, as on `scripts/dev`.
    let devnet = Devnet::start(pool, Duration::from_secs(3)).await;
    let (outcome, printed) = devnet.run_demo().await;
    // The nodes' step outlasts the devnet's one-second epoch interval, so the signed
    // batches and the nodes' batch settle in one epoch or in two.
    assert!((1..=2).contains(&outcome.epoch), "{printed}");
    assert_eq!(outcome, expected(outcome.epoch), "{printed}");
    for step in Step::ALL {
        assert!(printed.contains(&step.to_string()), "step {step:?} printed:\n{printed}");
    }
    assert!(
        !printed.contains("advancing anvil's clock"),
        "a short grace period is waited out, not skipped:\n{printed}"
    );

    // A second run on the same devnet reuses the accounts and nodes and earns the same again.
    // Later epochs paid the first run's sale, growth and offers steps (how many depends on
    // timing), and the hoster's claim now also pays what its nodes earned in the first run's
    // growth and offers steps (the same receipts each).
    let (outcome, printed) = devnet.run_demo().await;
    assert!(outcome.epoch >= 4, "{printed}");
    let again = Outcome {
        epoch: outcome.epoch,
        claimed: HOSTER_PER_RUN + 2 * 49_500,
        ..expected(0)
    };
    assert_eq!(outcome, again, "{printed}");
    assert!(printed.contains("already registered"), "{printed}");
    devnet.stop().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_long_grace_period_is_skipped_by_advancing_anvils_clock(pool: PgPool) {
    let devnet = Devnet::start(pool, Duration::from_secs(86_400)).await;
    let (outcome, printed) = devnet.run_demo().await;
    assert!((1..=2).contains(&outcome.epoch), "{printed}");
    assert_eq!(outcome, expected(outcome.epoch), "{printed}");
    assert!(
        printed.contains("advancing anvil's clock"),
        "the demo said it moved the clock:\n{printed}"
    );

    // The demo's checks bite: expecting another split than the API's fails the receipts step
    // and names what it expected and what it saw.
    let economics = Economics {
        split_witnessed: [8_000, 1_900, 100],
        ..Economics::default()
    };
    let error = demo::run(&devnet.demo_with(economics), &mut Vec::new())
        .await
        .expect_err("a wrong split cannot pass");
    assert_eq!(error.step, Step::Receipts, "{error}");
    match &error.failure {
        Failure::Mismatch { what, expected, seen } => {
            assert_eq!(what, "hoster's new earnings in the ledger");
            assert_eq!((expected.as_str(), seen.as_str()), ("44000", "49500"));
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    devnet.stop().await;
}
