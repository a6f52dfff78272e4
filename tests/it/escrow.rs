//! The Rust side against the real contracts on anvil: `adescrow deploy`'s code deploys and
//! grants roles, and payout trees built in Rust settle and claim on chain.

use std::path::PathBuf;
use std::time::Duration;

use adescrow::contracts::{AdEscrow, IAdEscrow, TestToken};
use adescrow::platform::deploy::{DeployArgs, DeployError, Deployment, deploy};
use adescrow::settlement::payout_tree::{PayoutLeaf, PayoutTree};
use alloy::network::EthereumWallet;
use alloy::primitives::aliases::U40;
use alloy::primitives::{U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::support::spawn_anvil;

fn args(anvil: &alloy::node_bindings::AnvilInstance, out: PathBuf) -> DeployArgs {
    let operator = PrivateKeySigner::from(anvil.keys()[0].clone());
    DeployArgs {
        rpc_url: anvil.endpoint_url(),
        deployer_key: operator.clone(),
        admin: None,
        settler: Some(anvil.addresses()[1]),
        guardian: Some(anvil.addresses()[2]),
        grace_period: Duration::from_secs(3600),
        challenge_window: Duration::ZERO,
        test_token: true,
        out,
    }
}

#[tokio::test]
async fn deploy_writes_a_deployment_and_grants_roles() {
    let anvil = spawn_anvil();
    let file = std::env::temp_dir().join(format!("adescrow-deploy-{}.json", std::process::id()));
    let deploy_args = args(&anvil, file.clone());
    let deployment = deploy(&deploy_args).await.unwrap();
    deployment.save(&file).unwrap();

    let loaded = Deployment::load(&file).unwrap();
    assert_eq!(loaded, deployment);
    assert_eq!(loaded.chain_id, anvil.chain_id());
    assert!(loaded.ad_escrow.block > 0 && loaded.consent_registry.block > loaded.ad_escrow.block);
    loaded.expect_chain(&file, anvil.chain_id()).unwrap();
    assert!(matches!(
        loaded.expect_chain(&file, 1),
        Err(DeployError::WrongChain {
            file: 31337,
            rpc: 1,
            ..
        })
    ));

    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let escrow = AdEscrow::new(deployment.ad_escrow.address, &provider);
    let settler = escrow.SETTLER_ROLE().call().await.unwrap();
    let guardian = escrow.GUARDIAN_ROLE().call().await.unwrap();
    assert!(escrow.hasRole(settler, anvil.addresses()[1]).call().await.unwrap());
    assert!(escrow.hasRole(guardian, anvil.addresses()[2]).call().await.unwrap());
    assert!(!escrow.hasRole(settler, anvil.addresses()[2]).call().await.unwrap());
    assert_eq!(escrow.gracePeriod().call().await.unwrap(), U40::from(3600u64));
    std::fs::remove_file(file).ok();
}

#[tokio::test]
async fn deploy_refuses_roles_it_cannot_grant() {
    let anvil = spawn_anvil();
    let mut deploy_args = args(&anvil, PathBuf::new());
    deploy_args.admin = Some(anvil.addresses()[3]);
    let error = deploy(&deploy_args).await.unwrap_err();
    assert!(matches!(error, DeployError::NotAdmin { .. }), "{error}");
    // Refused before anything was sent.
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    assert_eq!(provider.get_block_number().await.unwrap(), 0);
}

#[tokio::test]
async fn rust_payout_trees_settle_and_claim_on_chain() {
    let anvil = spawn_anvil();
    let deployment = deploy(&args(&anvil, PathBuf::new())).await.unwrap();
    let wallet = |i: usize| {
        let signer = PrivateKeySigner::from(anvil.keys()[i].clone());
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(anvil.endpoint_url())
    };
    let (advertiser, settler, anyone) = (wallet(4), wallet(1), wallet(5));
    let token_address = deployment.test_token.unwrap().address;

    // An advertiser funds a campaign.
    let token = TestToken::new(token_address, &advertiser);
    token
        .mint(anvil.addresses()[4], U256::from(1_000_000_000u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    token
        .approve(deployment.ad_escrow.address, U256::MAX)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let campaign = keccak256("campaign");
    let end = U40::from(4_000_000_000u64);
    AdEscrow::new(deployment.ad_escrow.address, &advertiser)
        .openCampaign(campaign, token_address, U256::from(1_000_000_000u64), end)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // Seven payees, indexes 0 to 6 in reverse (so that neighbours in a claimed slot are not
    // neighbours in the list); the tree is built in Rust.
    let payees: Vec<PayoutLeaf> = (1..=7u64)
        .map(|i| PayoutLeaf {
            account: PrivateKeySigner::random().address(),
            token: token_address,
            index: 7 - i,
            cumulative_amount: U256::from(i * 1_000_000),
        })
        .collect();
    let total: U256 = payees.iter().map(|p| p.cumulative_amount).sum();
    let tree = PayoutTree::new(payees).unwrap();
    let escrow = AdEscrow::new(deployment.ad_escrow.address, &settler);
    let receipt = escrow
        .settle(
            1,
            tree.root(),
            vec![IAdEscrow::Debit {
                campaignId: campaign,
                amount: total,
            }],
            vec![IAdEscrow::TokenTotal {
                token: token_address,
                amount: total,
            }],
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let claimer = AdEscrow::new(deployment.ad_escrow.address, &anyone);
    let state = claimer.tokenState(token_address).call().await.unwrap();
    assert_eq!(
        state.root.as_slice(),
        &tree.root()[..16],
        "the token's root: the high half"
    );
    assert_eq!(
        state.locked,
        U256::from(1_000_000_000u64) - total,
        "the debits left what is locked"
    );

    // Anyone claims for every payee with the Rust proofs; each receives its leaf, and the
    // escrow records it under the payee's index without touching the slot's other half.
    let reader = TestToken::new(token_address, &anyone);
    for (i, leaf) in tree.leaves().enumerate() {
        let receipt = claimer
            .claim(leaf.account, leaf.token, leaf.index_and_amount(), tree.proof(i))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "claim {i}");
        assert_eq!(
            reader.balanceOf(leaf.account).call().await.unwrap(),
            leaf.cumulative_amount,
            "payee {i}"
        );
    }
    for leaf in tree.leaves() {
        assert_eq!(
            claimer.claimed(U256::from(leaf.index)).call().await.unwrap(),
            leaf.cumulative_amount,
            "claimed under index {}",
            leaf.index
        );
    }
    assert_eq!(
        reader.balanceOf(deployment.ad_escrow.address).call().await.unwrap(),
        U256::from(1_000_000_000u64) - total,
        "the escrow paid out exactly the leaves"
    );

    // A proof for a forged amount, or for the leaf under another index, is refused on chain.
    let leaf = tree.leaves().next().copied().unwrap();
    let forged = claimer.claim(
        leaf.account,
        leaf.token,
        leaf.index_and_amount() + U256::from(1),
        tree.proof(0),
    );
    assert!(forged.call().await.is_err(), "forged claim must revert");
    let moved = PayoutLeaf { index: 100, ..leaf };
    let moved = claimer.claim(leaf.account, leaf.token, moved.index_and_amount(), tree.proof(0));
    assert!(moved.call().await.is_err(), "a leaf under another index must revert");
}
