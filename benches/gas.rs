//! Gas of the contracts' hot paths, as the `gasUsed` of real transactions on a local anvil
//! (intrinsic cost and calldata included).
//!
//!     cargo bench --bench gas
//!
//! Claims are measured on payout trees of depth 10 (1,024 leaves, every payee claims) and
//! depth 20 (2^20 leaves, a sample of payees claims), first and repeat, each beside the peer
//! figures it must beat. Prints one line per figure with its limit, and exits non-zero when
//! a figure is over its limit.

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
use alloy::network::{Ethereum, EthereumWallet};
use alloy::node_bindings::Anvil;
use alloy::primitives::aliases::U40;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, SolValue};

/// Claim gas of the peers, measured outside this repository in one harness on anvil (real
/// transactions, trees of the same depth, solc 0.8.37 at 1,000,000 runs, the project's
/// TestToken paid out): first and repeat claim, averaged over a tree's payees. AdEscrow must
/// be cheaper than each.
struct Peer {
    name: &'static str,
    first: u64,
    repeat: u64,
}

const PEERS_DEPTH_10: [Peer; 2] = [
    Peer {
        name: "1inch CumulativeMerkleDrop",
        first: 88_563,
        repeat: 54_353,
    },
    Peer {
        name: "Morpho URD",
        first: 90_690,
        repeat: 56_502,
    },
];

const PEERS_DEPTH_20: [Peer; 2] = [
    Peer {
        name: "1inch CumulativeMerkleDrop",
        first: 95_297,
        repeat: 61_099,
    },
    Peer {
        name: "Morpho URD",
        first: 98_184,
        repeat: 63_968,
    },
];

struct Figure {
    name: String,
    gas: u64,
    /// The most the figure may be; `None` for one-time costs shown for context.
    limit: Option<u64>,
    /// The peers' figures the limit comes from, to print beside it.
    against: Option<String>,
}

impl Figure {
    fn new(name: impl Into<String>, gas: u64, limit: Option<u64>) -> Self {
        Self {
            name: name.into(),
            gas,
            limit,
            against: None,
        }
    }
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

/// `count` payee addresses, cheap to make by the million; nobody signs for them (claims are
/// sent by someone else, as anyone may).
fn payees(count: usize) -> Vec<Address> {
    (0..count as u64)
        .map(|i| Address::from_word(keccak256(i.to_be_bytes())))
        .collect()
}

/// Earnings of every payee in an epoch: payee `i` (index `i`) has earned `(i + 1) * epoch`
/// base units.
fn earnings(payees: &[Address], token: Address, epoch: u64) -> (PayoutTree, U256) {
    let leaves: Vec<PayoutLeaf> = payees
        .iter()
        .enumerate()
        .map(|(i, &account)| PayoutLeaf {
            account,
            token,
            index: i as u64,
            cumulative_amount: U256::from((i as u64 + 1) * epoch),
        })
        .collect();
    let total = leaves.iter().map(|l| l.cumulative_amount).sum();
    (PayoutTree::new(leaves).expect("non-empty"), total)
}

/// The gas of the claims of the leaves at `positions` (positions in the order the tree was
/// given, which are the payees' indexes), sent one after another.
async fn claim_gas<P: Provider<Ethereum>>(
    escrow: &AdEscrow::AdEscrowInstance<P>,
    tree: &PayoutTree,
    positions: &[usize],
) -> Vec<u64> {
    let leaves: Vec<PayoutLeaf> = tree.leaves().copied().collect();
    let mut gas = Vec::with_capacity(positions.len());
    for &i in positions {
        let leaf = leaves[i];
        let pending = escrow
            .claim(leaf.account, leaf.token, leaf.index_and_amount(), tree.proof(i))
            .send()
            .await
            .expect("claim sent");
        // Anvil mines it within milliseconds; the client's own receipt polling would wait a
        // quarter of a second per claim.
        let receipt = loop {
            match escrow
                .provider()
                .get_transaction_receipt(*pending.tx_hash())
                .await
                .expect("receipt")
            {
                Some(receipt) => break receipt,
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        };
        gas.push(used(&receipt, "claim"));
    }
    gas
}

/// The most a steady-state settlement debiting `campaigns` campaigns may cost: what it costs
/// since claims went per index (about 47,000 + 9,300 per campaign), with a little room.
fn settle_limit(campaigns: usize) -> u64 {
    51_000 + 9_500 * campaigns as u64
}

fn mean(values: &[u64]) -> u64 {
    values.iter().sum::<u64>() / values.len() as u64
}

/// The claim figures of one depth: means over `positions`, all of them and split by the
/// half of the claimed slot each payee has (the first claim of a slot writes a fresh slot,
/// its neighbour's then a used one), each below every peer's.
fn claim_figures(depth: u32, peers: &[Peer], positions: &[usize], first: &[u64], repeat: &[u64]) -> Vec<Figure> {
    let beside = |figure: fn(&Peer) -> u64| {
        let limit = peers.iter().map(figure).min().expect("peers") - 1;
        let against = peers
            .iter()
            .map(|p| format!("{} {}", p.name, figure(p)))
            .collect::<Vec<_>>()
            .join(", ");
        (limit, against)
    };
    let (first_limit, first_peers) = beside(|p| p.first);
    let (repeat_limit, repeat_peers) = beside(|p| p.repeat);
    let half = |gas: &[u64], odd: bool| -> Vec<u64> {
        positions
            .iter()
            .zip(gas)
            .filter(|(i, _)| (*i % 2 == 1) == odd)
            .map(|(_, &g)| g)
            .collect()
    };
    let figure = |gas: u64, name: String, limit: u64, against: &String| Figure {
        name,
        gas,
        limit: Some(limit),
        against: Some(against.clone()),
    };
    let n = positions.len();
    vec![
        figure(
            mean(first),
            format!("claim d{depth}, first, mean of {n}"),
            first_limit,
            &first_peers,
        ),
        figure(
            mean(&half(first, false)),
            format!("claim d{depth}, first, fresh slot"),
            first_limit,
            &first_peers,
        ),
        figure(
            mean(&half(first, true)),
            format!("claim d{depth}, first, shared slot"),
            first_limit,
            &first_peers,
        ),
        figure(
            mean(repeat),
            format!("claim d{depth}, repeat, mean of {n}"),
            repeat_limit,
            &repeat_peers,
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let anvil = Anvil::at(support::foundry::anvil()).spawn();
    let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
    let (operator, advertiser, user, relayer) = (key(0), key(1), key(2), key(3));
    let connect = |signer: &PrivateKeySigner| {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(anvil.endpoint_url())
    };
    let advertiser_rpc = connect(&advertiser);
    let end = U40::from(4_000_000_000u64);
    let budget = U256::from(10u64).pow(U256::from(15u64));
    let campaigns: Vec<B256> = (0..10u8).map(|i| keccak256([b'c', i])).collect();

    // A deployment whose escrow has `window` as challenge window and the operator as settler,
    // with ten campaigns of ample budgets in its test token: (escrow, token, consent registry).
    let escrow_with = async |window: u64| -> anyhow::Result<(Address, Address, Address)> {
        let deployment = deploy(&DeployArgs {
            rpc_url: anvil.endpoint_url(),
            deployer_key: operator.clone(),
            admin: None,
            settler: Some(operator.address()),
            guardian: Some(operator.address()),
            grace_period: Duration::from_secs(86_400),
            challenge_window: Duration::from_secs(window),
            test_token: true,
            out: PathBuf::new(),
        })
        .await?;
        let token_address = deployment.test_token.expect("deployed with a test token").address;
        let token = TestToken::new(token_address, &advertiser_rpc);
        token
            .mint(advertiser.address(), budget * U256::from(10u64))
            .send()
            .await?
            .get_receipt()
            .await?;
        token
            .approve(deployment.ad_escrow.address, U256::MAX)
            .send()
            .await?
            .get_receipt()
            .await?;
        let escrow = AdEscrow::new(deployment.ad_escrow.address, &advertiser_rpc);
        for id in &campaigns {
            escrow
                .openCampaign(*id, token_address, budget, end)
                .send()
                .await?
                .get_receipt()
                .await?;
        }
        Ok((
            deployment.ad_escrow.address,
            token_address,
            deployment.consent_registry.address,
        ))
    };
    // Settles `tree` (whose leaves total `total`, `new` of it this epoch) over the first
    // `debited` campaigns.
    let settle_args = |tree: &PayoutTree, token: Address, new: U256, debited: usize| {
        let debits = split(&campaigns[..debited], new);
        let totals = vec![IAdEscrow::TokenTotal { token, amount: new }];
        (tree.root(), debits, totals)
    };

    let mut figures = Vec::new();

    // Depth 10: every payee of a 1,024-leaf tree claims, first and then again.
    let (escrow_address, token_address, consent_registry) = escrow_with(0).await?;
    // A provider per deployment: `deploy` sends from the operator's key on its own, and a
    // provider's cached nonce would be stale after it.
    let operator_rpc = connect(&operator);
    let escrow = AdEscrow::new(escrow_address, &operator_rpc);
    let small = payees(1 << 10);
    let positions: Vec<usize> = (0..small.len()).collect();
    let mut epoch = 0u64;
    let mut first = Vec::new();
    // The first two settlements initialize storage (the token's current and previous root)
    // once in the escrow's life; they are shown apart from the steady state.
    for warm_up in [
        "settle, epoch 1 (initializes storage)",
        "settle, epoch 2 (initializes storage)",
    ] {
        epoch += 1;
        let (tree, total) = earnings(&small, token_address, epoch);
        let (root, debits, totals) = settle_args(&tree, token_address, total / U256::from(epoch), 1);
        let receipt = escrow
            .settle(epoch, root, debits, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        figures.push(Figure::new(warm_up, used(&receipt, "settle"), None));
        if epoch == 2 {
            first = claim_gas(&AdEscrow::new(escrow_address, connect(&relayer)), &tree, &positions).await;
        }
    }
    // Steady-state settlements debiting more and more campaigns, whatever the payee count.
    let mut latest = None;
    for debited in [1usize, 2, 5, 10] {
        epoch += 1;
        let (tree, total) = earnings(&small, token_address, epoch);
        let (root, debits, totals) = settle_args(&tree, token_address, total / U256::from(epoch), debited);
        let receipt = escrow
            .settle(epoch, root, debits, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        figures.push(Figure::new(
            format!("settle, {debited} campaign(s)"),
            used(&receipt, "settle"),
            Some(settle_limit(debited)),
        ));
        latest = Some(tree);
    }
    let repeat = claim_gas(
        &AdEscrow::new(escrow_address, connect(&relayer)),
        &latest.expect("settled"),
        &positions,
    )
    .await;
    figures.extend(claim_figures(10, &PEERS_DEPTH_10, &positions, &first, &repeat));

    // Depth 20: a tree of 2^20 payees, built exactly as the relayer builds it; 256 of them,
    // pairs sharing a slot spread over the tree, claim first and then again.
    let (escrow_address, token_address, _) = escrow_with(0).await?;
    let operator_rpc = connect(&operator);
    let escrow = AdEscrow::new(escrow_address, &operator_rpc);
    let large = payees(1 << 20);
    let positions: Vec<usize> = (0..128usize).flat_map(|k| [k * 8_192, k * 8_192 + 1]).collect();
    let mut gas = Vec::new();
    for epoch in 1..=2u64 {
        let (tree, total) = earnings(&large, token_address, epoch);
        let (root, debits, totals) = settle_args(&tree, token_address, total / U256::from(epoch), 1);
        escrow
            .settle(epoch, root, debits, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        assert_eq!(tree.proof(positions[0]).len(), 20, "a depth-20 tree");
        gas.push(claim_gas(&AdEscrow::new(escrow_address, connect(&relayer)), &tree, &positions).await);
    }
    figures.extend(claim_figures(20, &PEERS_DEPTH_20, &positions, &gas[0], &gas[1]));

    // With a challenge window (production), a root waits out the window, anyone activates
    // it, and only then does the next settlement go in; both are measured.
    let window = 3_600u64;
    let (escrow_address, token_address, _) = escrow_with(window).await?;
    let operator_rpc = connect(&operator);
    let windowed = AdEscrow::new(escrow_address, &operator_rpc);
    for (epoch, debited) in [(1u64, 1usize), (2, 1), (3, 1), (4, 2), (5, 5)] {
        let (tree, total) = earnings(&small, token_address, epoch);
        let (root, debits, totals) = settle_args(&tree, token_address, total / U256::from(epoch), debited);
        let debits_hash = keccak256(debits.abi_encode());
        let receipt = windowed
            .settle(epoch, root, debits, totals.clone())
            .send()
            .await?
            .get_receipt()
            .await?;
        let gas = used(&receipt, "settle with a window");
        if epoch > 2 {
            figures.push(Figure::new(
                format!("settle (1 h window), {debited} campaign(s)"),
                gas,
                Some(settle_limit(debited)),
            ));
        }
        operator_rpc.anvil_increase_time(window + 1).await?;
        operator_rpc.anvil_mine(Some(1), None).await?;
        let receipt = windowed
            .activate(debits_hash, totals)
            .send()
            .await?
            .get_receipt()
            .await?;
        if epoch == 4 {
            // Rotating the token's roots and releasing its debits from `locked`, which
            // `settle` itself no longer does with a window.
            figures.push(Figure::new(
                "activate (anyone), 1 token",
                used(&receipt, "activate"),
                Some(46_500),
            ));
        }
    }

    // Consent: a direct grant, and a grant by signature submitted by a relayer.
    let scope = keccak256("personalized-ads");
    let registry = ConsentRegistry::new(consent_registry, connect(&user));
    let receipt = registry.grant(scope, 4_000_000_000).send().await?.get_receipt().await?;
    figures.push(Figure::new(
        "consent grant, direct",
        used(&receipt, "grant"),
        Some(70_000),
    ));

    let signer = PrivateKeySigner::random();
    let grant = ConsentGrant {
        user: signer.address(),
        scope,
        expiry: 4_000_000_000,
        nonce: U256::ZERO,
        deadline: U256::from(4_000_000_000u64),
    };
    let digest = grant.eip712_signing_hash(&consent_domain(anvil.chain_id(), consent_registry));
    let signature = Bytes::from(signer.sign_hash_sync(&digest)?.as_bytes().to_vec());
    let registry = ConsentRegistry::new(consent_registry, connect(&relayer));
    let receipt = registry
        .grantBySig(grant.user, scope, grant.expiry, grant.nonce, grant.deadline, signature)
        .send()
        .await?
        .get_receipt()
        .await?;
    figures.push(Figure::new(
        "consent grant, by signature",
        used(&receipt, "grantBySig"),
        Some(100_000),
    ));

    let mut over = false;
    #[allow(clippy::print_stdout)]
    {
        println!("gas (gasUsed of real transactions on anvil)");
        for f in &figures {
            match f.limit {
                Some(limit) => {
                    let verdict = if f.gas <= limit { "ok" } else { "OVER" };
                    over |= f.gas > limit;
                    match &f.against {
                        Some(peers) => println!("  {:<40} {:>8}   below {peers}   {verdict}", f.name, f.gas),
                        None => println!("  {:<40} {:>8}   limit {:>8}   {verdict}", f.name, f.gas, limit),
                    }
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
