//! Gas of the contracts' hot paths, as the `gasUsed` of real transactions on a local anvil
//! (intrinsic cost and calldata included), with a payout tree of 1,024 leaves.
//!
//!     cargo bench --bench gas
//!
//! Prints one line per figure with the limit the contracts are held to, and exits non-zero
//! when a figure is over its limit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench that cannot set up has nothing to measure"
)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use adescrow::contracts::{AdEscrow, ConsentGrant, ConsentRegistry, IAdEscrow, TestToken, consent_domain};
use adescrow::platform::deploy::{DeployArgs, deploy};
use adescrow::settlement::payout_tree::{PayoutLeaf, PayoutTree};
use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::aliases::U40;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ProviderBuilder;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct;

const LEAVES: usize = 1_024;

struct Figure {
    name: String,
    gas: u64,
    /// The most the figure may be; `None` for one-time costs shown for context.
    limit: Option<u64>,
}

fn used(receipt: &TransactionReceipt, what: &str) -> u64 {
    assert!(receipt.status(), "{what} reverted");
    receipt.gas_used
}

/// Debits `amount` from `campaigns` in equal shares (the first takes the remainder).
fn split(campaigns: &[B256], amount: U256) -> Vec<IAdEscrow::Debit> {
    let count = U256::from(campaigns.len() as u64);
    let share = amount / count;
    campaigns
        .iter()
        .enumerate()
        .map(|(i, &campaign_id)| IAdEscrow::Debit {
            campaignId: campaign_id,
            amount: if i == 0 {
                amount - share * (count - U256::from(1u64))
            } else {
                share
            },
        })
        .collect()
}

/// Earnings of every payee in an epoch: payee `i` has earned `(i + 1) * epoch` base units.
fn earnings(payees: &[Address], token: Address, epoch: u64) -> (PayoutTree, U256) {
    let leaves: Vec<PayoutLeaf> = payees
        .iter()
        .enumerate()
        .map(|(i, &account)| PayoutLeaf {
            account,
            token,
            cumulative_amount: U256::from((i as u64 + 1) * epoch),
        })
        .collect();
    let total = leaves.iter().map(|l| l.cumulative_amount).sum();
    (PayoutTree::new(leaves).expect("non-empty"), total)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let anvil = Anvil::at(support::foundry::anvil()).spawn();
    let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
    let (operator, advertiser, user, relayer) = (key(0), key(1), key(2), key(3));

    let deployment = deploy(&DeployArgs {
        rpc_url: anvil.endpoint_url(),
        deployer_key: operator.clone(),
        admin: None,
        settler: Some(operator.address()),
        guardian: Some(operator.address()),
        grace_period: Duration::from_secs(86_400),
        challenge_window: Duration::ZERO,
        test_token: true,
        out: PathBuf::new(),
    })
    .await?;
    let connect = |signer: &PrivateKeySigner| {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(anvil.endpoint_url())
    };
    let operator_rpc = connect(&operator);
    let advertiser_rpc = connect(&advertiser);
    let token_address = deployment.test_token.expect("deployed with a test token").address;
    let escrow = AdEscrow::new(deployment.ad_escrow.address, &operator_rpc);

    // Ten campaigns with ample budgets.
    let token = TestToken::new(token_address, &advertiser_rpc);
    let budget = U256::from(10u64).pow(U256::from(15u64));
    token
        .mint(advertiser.address(), budget * U256::from(10u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    token
        .approve(escrow.address().to_owned(), U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let advertiser_escrow = AdEscrow::new(deployment.ad_escrow.address, &advertiser_rpc);
    let end = U40::from(4_000_000_000u64);
    let campaigns: Vec<B256> = (0..10u8).map(|i| keccak256([b'c', i])).collect();
    for id in &campaigns {
        advertiser_escrow
            .openCampaign(*id, token_address, budget, end)
            .send()
            .await?
            .get_receipt()
            .await?;
    }

    let payees: Vec<Address> = (0..LEAVES).map(|_| PrivateKeySigner::random().address()).collect();
    let mut figures = Vec::new();
    let mut epoch = 0u64;
    let mut settle = |debited: usize| {
        epoch += 1;
        let (tree, total) = earnings(&payees, token_address, epoch);
        // Spread this epoch's new earnings (`total / epoch` of the cumulative) over campaigns.
        let new = total / U256::from(epoch);
        let debits = split(&campaigns[..debited], new);
        let totals = vec![IAdEscrow::TokenTotal {
            token: token_address,
            amount: new,
        }];
        (epoch, tree, debits, totals)
    };

    // The first two settlements initialize storage (current and previous root, the token's
    // totals) once in the escrow's life; they are shown apart from the steady state.
    let mut latest_tree = None;
    for warm_up in [
        "settle, epoch 1 (initializes storage)",
        "settle, epoch 2 (initializes storage)",
    ] {
        let (e, tree, debits, totals) = settle(1);
        let receipt = escrow
            .settle(e, tree.root(), debits, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        figures.push(Figure {
            name: warm_up.into(),
            gas: used(&receipt, "settle"),
            limit: None,
        });
        latest_tree = Some(tree);
    }

    // A first claim by a payee that holds no tokens and never claimed.
    let tree = latest_tree.take().expect("settled");
    let leaf = tree.leaves().next().copied().expect("leaf");
    let claimer = AdEscrow::new(deployment.ad_escrow.address, connect(&relayer));
    let receipt = claimer
        .claim(leaf.account, leaf.token, leaf.cumulative_amount, tree.proof(0))
        .send()
        .await?
        .get_receipt()
        .await?;
    figures.push(Figure {
        name: "claim, first (new account)".into(),
        gas: used(&receipt, "claim"),
        limit: Some(95_000),
    });

    // Steady-state settlements debiting more and more campaigns, whatever the payee count.
    for debited in [1usize, 2, 5, 10] {
        let (e, tree, debits, totals) = settle(debited);
        let receipt = escrow
            .settle(e, tree.root(), debits, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        let limit = Some(60_000 + 10_000 * debited as u64);
        figures.push(Figure {
            name: format!("settle, {debited} campaign(s)"),
            gas: used(&receipt, "settle"),
            limit,
        });
        latest_tree = Some(tree);
    }

    // The same payee claims again, now holding tokens.
    let tree = latest_tree.expect("settled");
    let leaf = tree.leaves().next().copied().expect("leaf");
    let receipt = claimer
        .claim(leaf.account, leaf.token, leaf.cumulative_amount, tree.proof(0))
        .send()
        .await?
        .get_receipt()
        .await?;
    figures.push(Figure {
        name: "claim, repeat".into(),
        gas: used(&receipt, "claim"),
        limit: Some(60_000),
    });

    // With a challenge window (production), a root waits out the window, anyone activates
    // it, and only then does the next settlement go in; both are measured.
    let window = 3_600u64;
    let receipt = AdEscrow::deploy_builder(
        &operator_rpc,
        operator.address(),
        U40::from(86_400u64),
        U40::from(window),
    )
    .send()
    .await?
    .get_receipt()
    .await?;
    let windowed = AdEscrow::new(receipt.contract_address.expect("a deployment"), &operator_rpc);
    let settler_role = windowed.SETTLER_ROLE().call().await?;
    windowed
        .grantRole(settler_role, operator.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    token
        .mint(advertiser.address(), budget * U256::from(10u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    token
        .approve(*windowed.address(), U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let advertiser_windowed = AdEscrow::new(*windowed.address(), &advertiser_rpc);
    for id in &campaigns {
        advertiser_windowed
            .openCampaign(*id, token_address, budget, end)
            .send()
            .await?
            .get_receipt()
            .await?;
    }
    for (epoch, debited) in [(1u64, 1usize), (2, 1), (3, 1), (4, 2), (5, 5)] {
        let (tree, total) = earnings(&payees, token_address, epoch);
        let new = total / U256::from(epoch);
        let totals = vec![IAdEscrow::TokenTotal {
            token: token_address,
            amount: new,
        }];
        let receipt = windowed
            .settle(epoch, tree.root(), split(&campaigns[..debited], new), totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        let gas = used(&receipt, "settle with a window");
        if epoch > 2 {
            let limit = Some(60_000 + 10_000 * debited as u64);
            figures.push(Figure {
                name: format!("settle (1 h window), {debited} campaign(s)"),
                gas,
                limit,
            });
        }
        operator_rpc.anvil_increase_time(window + 1).await?;
        operator_rpc.anvil_mine(Some(1), None).await?;
        let receipt = windowed.activate().send().await?.get_receipt().await?;
        if epoch == 4 {
            let gas = used(&receipt, "activate");
            figures.push(Figure {
                name: "activate (anyone, after the window)".into(),
                gas,
                limit: None,
            });
        }
    }

    // Consent: a direct grant, and a grant by signature submitted by a relayer.
    let scope = keccak256("personalized-ads");
    let registry = ConsentRegistry::new(deployment.consent_registry.address, connect(&user));
    let receipt = registry.grant(scope, 4_000_000_000).send().await?.get_receipt().await?;
    figures.push(Figure {
        name: "consent grant, direct".into(),
        gas: used(&receipt, "grant"),
        limit: Some(70_000),
    });

    let signer = PrivateKeySigner::random();
    let grant = ConsentGrant {
        user: signer.address(),
        scope,
        expiry: 4_000_000_000,
        nonce: U256::ZERO,
        deadline: U256::from(4_000_000_000u64),
    };
    let digest = grant.eip712_signing_hash(&consent_domain(anvil.chain_id(), deployment.consent_registry.address));
    let signature = Bytes::from(signer.sign_hash_sync(&digest)?.as_bytes().to_vec());
    let registry = ConsentRegistry::new(deployment.consent_registry.address, connect(&relayer));
    let receipt = registry
        .grantBySig(grant.user, scope, grant.expiry, grant.nonce, grant.deadline, signature)
        .send()
        .await?
        .get_receipt()
        .await?;
    figures.push(Figure {
        name: "consent grant, by signature".into(),
        gas: used(&receipt, "grantBySig"),
        limit: Some(100_000),
    });

    let mut over = false;
    #[allow(clippy::print_stdout)]
    {
        println!("gas (gasUsed of real transactions on anvil; payout tree of {LEAVES} leaves)");
        for f in &figures {
            match f.limit {
                Some(limit) => {
                    let verdict = if f.gas <= limit { "ok" } else { "OVER" };
                    over |= f.gas > limit;
                    println!("  {:<40} {:>8}   limit {:>8}   {verdict}", f.name, f.gas, limit);
                }
                None => println!("  {:<40} {:>8}   (no limit)", f.name, f.gas),
            }
        }
    }
    if over {
        anyhow::bail!("a figure is over its limit");
    }
    Ok(())
}
