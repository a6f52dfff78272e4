//! Dividing a price among payees in integer base units. Shares are given in basis points;
//! each payee gets the floor of its exact share, and the units left over go one each to the
//! payees with the largest remainders (ties to the earlier payee), so the shares always sum
//! to the price exactly.

use alloy::primitives::Address;

use super::SplitPolicy;
use crate::adserver::pricing::EventType;
use crate::money::Amount;

/// Basis points in a whole.
pub const WHOLE: u32 = 10_000;

/// Splits `price` by `weights` (basis points summing to [`WHOLE`]).
pub fn largest_remainder<const N: usize>(price: Amount, weights: [u32; N]) -> [Amount; N] {
    debug_assert_eq!(weights.iter().sum::<u32>(), WHOLE, "weights must sum to a whole");
    let mut shares = [Amount::ZERO; N];
    let mut remainders = [0u128; N];
    let mut handed_out = 0u128;
    for (i, weight) in weights.iter().enumerate() {
        // price * weight cannot overflow in two steps: split the price by the divisor first.
        let (whole, part) = (price.0 / u128::from(WHOLE), price.0 % u128::from(WHOLE));
        let exact_part = part * u128::from(*weight);
        shares[i] = Amount(whole * u128::from(*weight) + exact_part / u128::from(WHOLE));
        remainders[i] = exact_part % u128::from(WHOLE);
        handed_out += shares[i].0;
    }
    // The remainders are fractions below one that sum to a whole number of units: fewer
    // than N are left, and at least that many payees have a remainder.
    let left = (price.0 - handed_out) as usize;
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| (std::cmp::Reverse(remainders[i]), i));
    for &i in &order[..left] {
        shares[i].0 += 1;
    }
    shares
}

/// Hoster, platform, witness and viewer shares of one price: the split of its kind (witnessed
/// or not), with the viewer's reward, when `rewarded`, taken from the platform's share.
pub fn shares(
    policy: &SplitPolicy,
    witnessed: bool,
    event: EventType,
    price: Amount,
    rewarded: Option<Address>,
) -> [Amount; 4] {
    let [hoster, mut platform, witness] = if witnessed {
        largest_remainder(price, policy.witnessed)
    } else {
        let [hoster, platform] = largest_remainder(price, policy.unwitnessed);
        [hoster, platform, Amount::ZERO]
    };
    let reward = match rewarded {
        // The reward comes out of the platform's share and never exceeds it.
        Some(_) => Amount(
            price.0 / u128::from(WHOLE) * u128::from(policy.viewer_reward[event as usize])
                + price.0 % u128::from(WHOLE) * u128::from(policy.viewer_reward[event as usize]) / u128::from(WHOLE),
        )
        .min(platform),
        None => Amount::ZERO,
    };
    platform = platform.saturating_sub(reward);
    [hoster, platform, witness, reward]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_the_price() {
        for price in [
            0u128,
            1,
            2,
            3,
            7,
            99,
            100,
            101,
            999,
            1_000,
            12_345,
            1_000_001,
            u128::MAX,
        ] {
            for weights in [
                [9_000, 900, 100],
                [5_000, 5_000, 0],
                [3_333, 3_333, 3_334],
                [10_000, 0, 0],
            ] {
                let shares = largest_remainder(Amount(price), weights);
                let total = shares.iter().fold(0u128, |sum, s| sum.checked_add(s.0).unwrap());
                assert_eq!(total, price, "{price} by {weights:?}: {shares:?}");
                for (share, weight) in shares.iter().zip(weights) {
                    let exact = price as f64 * f64::from(weight) / 10_000.0;
                    assert!(
                        (share.0 as f64 - exact).abs() <= 1.0 + exact * 1e-12,
                        "{price} {weights:?} {shares:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn leftover_units_go_to_the_largest_remainders() {
        // 7 * 90% = 6.3, 7 * 9% = 0.63, 7 * 1% = 0.07: floors 6, 0, 0; one unit left, to the 0.63.
        assert_eq!(
            largest_remainder(Amount(7), [9_000, 900, 100]),
            [Amount(6), Amount(1), Amount(0)]
        );
        // 1 * 50% each: a tie goes to the first.
        assert_eq!(largest_remainder(Amount(1), [5_000, 5_000]), [Amount(1), Amount(0)]);
        assert_eq!(
            largest_remainder(Amount(100), [9_000, 900, 100]),
            [Amount(90), Amount(9), Amount(1)]
        );
    }
}
