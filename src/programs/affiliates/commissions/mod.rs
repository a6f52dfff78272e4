//! Commissions: accrued from the ledger outside billing, held, released, clawed back.
//!
//! - **Accrual** ([`accrue`]) reads receipt-batch postings after its cursor (up to the
//!   ledger's committed watermark); for each batch and affiliate that was active when it was
//!   billed, whose attributed advertisers' campaigns it billed within their attributions'
//!   months, it moves `floor(platform share * rate / 10000)` of that spend's platform share
//!   out of the platform's share of that posting to the affiliate, in the same token, as a
//!   held transfer. The rate in force at billing is stored with the commission, and the
//!   campaigns it was earned on beside it. Cursor and postings commit together, and each
//!   commission is unique on (batch, affiliate), so a crash repeats nothing.
//! - **Hold and release** ([`release_due`]): a commission waits for its hold period and for
//!   an epoch covering the spend to be the chain's current root (settled, past its challenge
//!   window); then it is released, once the affiliate's due commissions in that token reach
//!   the minimum payout, into the next epoch.
//! - **Clawback** ([`claw_back`]): receipts reversed by an adjustment take back
//!   `floor(amount * reversed platform share / platform share)` in total, less what earlier
//!   adjustments took (so the affiliate keeps the rounding until the whole is reversed, and
//!   a whole reversal takes back exactly the whole). A held commission is reversed and
//!   posted again smaller; a released one is moved back, and if its payout already included
//!   it the ledger makes the platform's credit wait until the affiliate's later earnings
//!   have repaid it.

mod accrual;
mod clawback;
mod release;
mod views;

pub use accrual::accrue;
pub use clawback::claw_back;
pub use release::release_due;
pub use views::{Attributed, Commission, MonthTotal, State, TokenSpend, attributed, by_month, of_affiliate};

use std::collections::BTreeMap;

use alloy::primitives::Address;
use sqlx::PgConnection;

use super::AffiliateError;
use crate::money::Amount;
use crate::money::ledger::{self, NewHold, Party, Posting, Source};

fn share(amount: Amount, numerator: u128, denominator: u128) -> Amount {
    if denominator == 0 {
        return Amount::ZERO;
    }
    // amount * numerator / denominator without overflow: split amount by the denominator.
    let (whole, part) = (amount.0 / denominator, amount.0 % denominator);
    Amount(whole * numerator + part * numerator / denominator)
}

/// A commission's amount: the floor of `rate_bps` basis points of the platform's share.
pub fn commission(platform_share: Amount, rate_bps: i32) -> Amount {
    share(platform_share, u128::from(rate_bps.unsigned_abs()), 10_000)
}

/// What all clawbacks of a commission take back once `reversed` of its platform share has
/// been reversed: the floor of its pro rata part.
pub fn clawed_total(amount: Amount, reversed: Amount, platform_share: Amount) -> Amount {
    share(amount, reversed.0.min(platform_share.0), platform_share.0)
}

/// A held transfer of `amount` from the platform to the affiliate. Returns its posting.
#[allow(clippy::too_many_arguments, reason = "one transfer's parts, each distinct")]
async fn post_commission(
    conn: &mut PgConnection,
    chain_id: u64,
    token: Address,
    platform: Address,
    affiliate: Address,
    amount: Amount,
    hold: NewHold,
    source_id: &str,
) -> Result<i64, AffiliateError> {
    let mut posting = Posting::default();
    posting.transfer((Party::Platform, platform), (Party::Affiliate, affiliate), amount);
    let postings = BTreeMap::from([(token, posting.hold(hold))]);
    let posted = ledger::post(conn, chain_id, Source::Transfer, source_id, &postings).await?;
    posted
        .first()
        .map(|posted| posted.posting_id)
        .ok_or_else(|| AffiliateError::Database(sqlx::Error::Protocol("a commission posted nothing".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commission_is_the_floor_of_its_rate() {
        assert_eq!(commission(Amount(999), 2000), Amount(199));
        assert_eq!(commission(Amount(u128::MAX), 5000), Amount(u128::MAX / 2));
        assert_eq!(commission(Amount(4), 2000), Amount(0));
    }

    #[test]
    fn clawbacks_add_up_to_the_whole_only_when_all_is_reversed() {
        let (amount, share) = (Amount(199), Amount(999));
        let first = clawed_total(amount, Amount(333), share);
        let second = clawed_total(amount, Amount(666), share);
        let all = clawed_total(amount, Amount(999), share);
        assert_eq!((first, second, all), (Amount(66), Amount(132), Amount(199)));
        assert_eq!(
            clawed_total(amount, Amount(5000), share),
            amount,
            "never more than the whole"
        );
    }
}
