//! The numbers the demo expects, worked out on its own rather than read back from the
//! system it checks: the campaign's prices and budget, and each party's share of a price
//! under the devnet's split (largest remainder, ties to the earlier party, as
//! `docs/ENCODING.md` and the README specify).

/// Basis points in a whole.
const WHOLE: u128 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Economics {
    /// What the advertiser locks in the escrow (token base units).
    pub budget: u128,
    /// Price per thousand impressions (a multiple of 1,000, so an impression costs whole units).
    pub cpm: u128,
    /// Price per click.
    pub cpc: u128,
    /// Witnessed events: hoster, platform and witness shares in basis points, as the API is
    /// configured (`ADESCROW_SPLIT_WITNESSED`).
    pub split_witnessed: [u32; 3],
}

impl Default for Economics {
    /// 100 tUSD of budget; 1 tUSD per thousand impressions and 0.05 tUSD per click (6 decimals).
    fn default() -> Self {
        Self {
            budget: 100_000_000,
            cpm: 1_000_000,
            cpc: 50_000,
            split_witnessed: [9_000, 900, 100],
        }
    }
}

impl Economics {
    pub fn impression_price(&self) -> u128 {
        self.cpm / 1_000
    }

    /// The hoster's share of a witnessed event's price.
    pub fn hoster_share(&self, price: u128) -> u128 {
        largest_remainder(price, self.split_witnessed)[0]
    }

    /// The witness's share of a witnessed event's price.
    pub fn witness_share(&self, price: u128) -> u128 {
        largest_remainder(price, self.split_witnessed)[2]
    }
}

/// Splits `price` by `weights` (basis points summing to a whole): floors first, then one
/// unit each to the largest remainders.
fn largest_remainder<const N: usize>(price: u128, weights: [u32; N]) -> [u128; N] {
    let mut shares = [0u128; N];
    let mut remainders = [0u128; N];
    for (i, weight) in weights.into_iter().enumerate() {
        // Split the price by the divisor first so that price * weight cannot overflow.
        let exact_part = (price % WHOLE) * u128::from(weight);
        shares[i] = price / WHOLE * u128::from(weight) + exact_part / WHOLE;
        remainders[i] = exact_part % WHOLE;
    }
    let left = price.saturating_sub(shares.iter().sum());
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| (std::cmp::Reverse(remainders[i]), i));
    for &i in order.iter().take(left as usize) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_the_price_and_follow_the_largest_remainder() {
        assert_eq!(largest_remainder(1_000, [9_000, 900, 100]), [900, 90, 10]);
        // 2001 * 0.9 = 1800.9, * 0.09 = 180.09, * 0.01 = 20.01: the unit left goes to the hoster.
        assert_eq!(largest_remainder(2_001, [9_000, 900, 100]), [1_801, 180, 20]);
        // A tie goes to the earlier party.
        assert_eq!(largest_remainder(3_001, [5_000, 5_000]), [1_501, 1_500]);
        for price in [0, 1, 7, 99, 12_345, u128::MAX / 3] {
            assert_eq!(
                largest_remainder(price, [3_333, 3_333, 3_334]).iter().sum::<u128>(),
                price
            );
        }
    }
}
