//! The demo's cast: anvil's well-known development accounts, derived from the public
//! mnemonic `test test test test test test test test test test test junk`. Every anvil
//! starts with them funded, which is what makes them usable and also what makes them
//! worthless anywhere else: their keys are public. Devnet only.

use std::fmt;

use alloy::signers::local::PrivateKeySigner;

use super::error::Failure;
use crate::platform::config::DemoArgs;

/// Private keys of anvil's accounts 0 to 9.
pub const ANVIL_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// Anvil account `index` (0 to 9). Accounts 0 to 2 are the operator's on a devnet
/// (deployer and platform, settler, guardian); the demo uses 3 to 9.
#[allow(clippy::expect_used, reason = "the keys are constants that parse")]
pub fn anvil_account(index: usize) -> PrivateKeySigner {
    ANVIL_KEYS[index].parse().expect("anvil's keys are valid")
}

/// The wallets and node keys the demo acts with.
#[derive(Debug, Clone)]
pub struct DemoAccounts {
    /// Signs in, creates and funds the campaign, ends it and withdraws the rest.
    pub advertiser: PrivateKeySigner,
    /// The hoster's wallet: owns both hoster nodes, earns their share and claims it.
    pub hoster: PrivateKeySigner,
    /// The two hoster nodes' signing keys (they sign decisions' sessions and batches).
    pub hoster_nodes: [PrivateKeySigner; 2],
    /// The witness's wallet: a second, independent operator who earns the witness share.
    pub witness: PrivateKeySigner,
    /// The witness node's signing key, which co-signs every batch.
    pub witness_node: PrivateKeySigner,
    /// Signs in, gets a pseudonymous viewer id and grants consent without paying gas.
    pub viewer: PrivateKeySigner,
    /// The devnet's operator (its admin and treasury): opens the referral budget, sets the
    /// referral rules and approves the affiliate.
    pub operator: PrivateKeySigner,
}

impl DemoAccounts {
    /// Anvil accounts 3 to 9, in the order of the fields, and the deployer (account 0) as
    /// the operator.
    pub fn anvil() -> Self {
        Self {
            advertiser: anvil_account(3),
            hoster: anvil_account(4),
            hoster_nodes: [anvil_account(5), anvil_account(6)],
            witness: anvil_account(7),
            witness_node: anvil_account(8),
            viewer: anvil_account(9),
            operator: anvil_account(0),
        }
    }

    /// The keys given to `adescrow demo`, anvil's accounts for the others.
    pub fn from_args(args: &DemoArgs) -> Result<Self, Failure> {
        let anvil = Self::anvil();
        let hoster_nodes = match args.hoster_node_keys.as_slice() {
            [] => anvil.hoster_nodes.clone(),
            [first, second] => [first.clone(), second.clone()],
            keys => {
                return Err(Failure::Setup(format!(
                    "--hoster-node-keys takes two keys, got {}",
                    keys.len()
                )));
            }
        };
        let pick =
            |key: &Option<PrivateKeySigner>, default: &PrivateKeySigner| key.clone().unwrap_or_else(|| default.clone());
        Ok(Self {
            advertiser: pick(&args.advertiser_key, &anvil.advertiser),
            hoster: pick(&args.hoster_key, &anvil.hoster),
            hoster_nodes,
            witness: pick(&args.witness_key, &anvil.witness),
            witness_node: pick(&args.witness_node_key, &anvil.witness_node),
            viewer: pick(&args.viewer_key, &anvil.viewer),
            operator: pick(&args.operator_key, &anvil.operator),
        })
    }

    /// Each role with its wallet, in print order.
    pub fn roles(&self) -> [(&'static str, &PrivateKeySigner); 8] {
        [
            ("operator", &self.operator),
            ("advertiser", &self.advertiser),
            ("hoster", &self.hoster),
            ("hoster node 1", &self.hoster_nodes[0]),
            ("hoster node 2", &self.hoster_nodes[1]),
            ("witness", &self.witness),
            ("witness node", &self.witness_node),
            ("viewer", &self.viewer),
        ]
    }
}

/// The accounts as a block of `role  address  private key` lines, for `scripts/dev`.
#[derive(Debug)]
pub struct AccountsTable<'a>(pub &'a DemoAccounts);

impl fmt::Display for AccountsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (role, wallet) in self.0.roles() {
            writeln!(f, "  {role:<14} {}  {}", wallet.address(), wallet.to_bytes())?;
        }
        Ok(())
    }
}
