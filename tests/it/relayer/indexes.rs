//! Permanent payee indexes and per-token roots on anvil: a payee keeps its index from epoch
//! to epoch and new payees take the next ones; two payees sharing a claimed slot each get
//! exactly their own; a build that rolls back leaves no index behind; and a token with
//! leaves but no debits in an epoch still moves to the epoch's root.

use adescrow::settlement::relayer::epoch;
use alloy::primitives::aliases::U40;

use super::*;

/// Whoever sends the claims: claims pay the payee, whoever sends them.
const SENDER: usize = 9;

impl World {
    /// The token's entry of `account`'s payouts.
    async fn payout(&self, account: Address, token: Address) -> Value {
        let reply = self.app.get(&format!("/v1/payouts/{account}"), None).await;
        let payouts = reply.ok();
        payouts["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token"].as_str().unwrap().parse::<Address>().unwrap() == token)
            .unwrap_or_else(|| panic!("no {token} payout: {payouts}"))
            .clone()
    }

    /// Claims `account`'s payout in `token` with the API's calldata, sent by someone else;
    /// returns what the account received.
    async fn claim_for(&self, account: Address, token: Address) -> U256 {
        let payout = self.payout(account, token).await;
        let calldata: Bytes = payout["calldata"].as_str().unwrap().parse().unwrap();
        let erc20 = TestToken::new(token, self.chain.wallet(0));
        let before = erc20.balanceOf(account).call().await.unwrap();
        send(
            self,
            &PrivateKeySigner::from(self.chain.anvil.keys()[SENDER].clone()),
            calldata,
        )
        .await;
        erc20.balanceOf(account).call().await.unwrap() - before
    }

    /// Every payee's index, by account, in `token`.
    async fn indexes(&self, token: Address) -> BTreeMap<Address, i64> {
        let rows: Vec<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT account, leaf_index FROM payout_indexes WHERE chain_id = $1 AND token = $2")
                .bind(CHAIN_ID as i64)
                .bind(token.as_slice())
                .fetch_all(&self.pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(account, index)| (Address::from_slice(&account), index))
            .collect()
    }

    async fn claimed_on_chain(&self, index: u64) -> U256 {
        AdEscrow::new(self.chain.deployment.ad_escrow.address, self.chain.wallet(0))
            .claimed(U256::from(index))
            .call()
            .await
            .unwrap()
    }

    /// A second token with a funded escrow campaign and its off-chain twin.
    async fn second_token(&self) -> (Address, Uuid) {
        let deployer = self.chain.wallet(0);
        let token = *TestToken::deploy(&deployer, "Test EUR".into(), "tEUR".into())
            .await
            .unwrap()
            .address();
        let budget = U256::from(10u64.pow(11));
        self.chain.fund_wallet(token, 3, budget).await;
        let chain_campaign = keccak256("campaign in the second token");
        AdEscrow::new(self.chain.deployment.ad_escrow.address, self.chain.wallet(3))
            .openCampaign(chain_campaign, token, budget, U40::from(4_000_000_000u64))
            .send()
            .await
            .unwrap()
            .watch()
            .await
            .unwrap();
        let advertiser = Advertiser::new(&self.app, "UTC", 10u128.pow(15), 10u128.pow(15)).await;
        let (campaign, _) = advertiser
            .campaign(
                &self.app,
                json!({ "token": token, "chainCampaignId": chain_campaign }),
                json!({ "cpm": "1000000" }),
            )
            .await;
        (token, campaign["id"].as_str().unwrap().parse().unwrap())
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn payees_keep_their_indexes_and_slot_neighbours_each_claim_their_own(pool: PgPool) {
    let world = World::new(pool).await;
    let token = world.chain.token;
    let relayer = world.relayer(1);

    // Epoch 1: two new payees, numbered from 0 by account: one claimed slot (0 and 1).
    world.owe("first", &[(hoster(2), 300), (hoster(1), 200)]).await;
    world.settle(&relayer, 1).await;
    assert_eq!(
        world.indexes(token).await,
        BTreeMap::from([(hoster(1), 0), (hoster(2), 1)])
    );
    assert_eq!(world.payout(hoster(1), token).await["index"], 0);
    assert_eq!(world.payout(hoster(2), token).await["index"], 1);
    // Both halves of the slot: each gets exactly its own, and the other half stays.
    assert_eq!(world.claim_for(hoster(2), token).await, U256::from(300));
    assert_eq!(world.claim_for(hoster(1), token).await, U256::from(200));
    assert_eq!(world.claimed_on_chain(0).await, U256::from(200));
    assert_eq!(world.claimed_on_chain(1).await, U256::from(300));

    // Epoch 2: an existing payee earns more, two new ones arrive. A build that fails after
    // assigning indexes (here: a totals row in its way) rolls them back with everything else.
    world
        .owe("second", &[(hoster(4), 40), (hoster(2), 10), (hoster(3), 30)])
        .await;
    let closed = epoch::close(&world.pool, CHAIN_ID).await.unwrap();
    assert_eq!(closed, 2);
    sqlx::query("INSERT INTO settlement_totals (chain_id, epoch, token, amount) VALUES ($1, 2, $2, 0)")
        .bind(CHAIN_ID as i64)
        .bind(token.as_slice())
        .execute(&world.pool)
        .await
        .unwrap();
    epoch::build(&world.pool, CHAIN_ID, 2).await.unwrap_err();
    assert_eq!(
        world.indexes(token).await.len(),
        2,
        "no index outlives its failed build"
    );
    sqlx::query("DELETE FROM settlement_totals WHERE epoch = 2")
        .execute(&world.pool)
        .await
        .unwrap();
    world.settle(&relayer, 2).await;
    assert_eq!(
        world.indexes(token).await,
        BTreeMap::from([(hoster(1), 0), (hoster(2), 1), (hoster(3), 2), (hoster(4), 3)]),
        "old payees keep theirs; new ones take the next, by account"
    );

    // The existing payee is paid only what it added; the new slot's neighbours their own.
    assert_eq!(world.claim_for(hoster(2), token).await, U256::from(10));
    assert_eq!(world.claim_for(hoster(4), token).await, U256::from(40));
    assert_eq!(world.claim_for(hoster(3), token).await, U256::from(30));
    for (index, claimed) in [200, 310, 30, 40].into_iter().enumerate() {
        assert_eq!(
            world.claimed_on_chain(index as u64).await,
            U256::from(claimed),
            "index {index}"
        );
    }
    // Nothing is left to claim: a replay pays nothing.
    assert_eq!(world.claim_for(hoster(1), token).await, U256::ZERO);

    // An index is permanent: the table refuses to change or drop one.
    for statement in [
        "UPDATE payout_indexes SET account = account",
        "DELETE FROM payout_indexes WHERE leaf_index = 3",
    ] {
        let refused = sqlx::query(statement).execute(&world.pool).await.unwrap_err();
        assert!(refused.to_string().contains("permanent"), "{statement}: {refused}");
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_token_with_leaves_but_no_debits_moves_to_the_new_root(pool: PgPool) {
    let world = World::new(pool).await;
    let (euro, euro_campaign) = world.second_token().await;
    let dollar = world.chain.token;
    let relayer = world.relayer(1);

    world.owe("dollars", &[(hoster(1), 500)]).await;
    world.owe_in(euro, euro_campaign, "euros", &[(hoster(2), 300)]).await;
    world.settle(&relayer, 1).await;
    // Epoch 2 debits only dollars; the euro payee's leaf is carried into its tree.
    world.owe("more dollars", &[(hoster(1), 100)]).await;
    world.settle(&relayer, 2).await;

    let settled = world.settled_logs().await;
    let totals = |epoch: usize| -> Vec<(Address, U256)> {
        settled[epoch - 1].totals.iter().map(|t| (t.token, t.amount)).collect()
    };
    let mut first = vec![(dollar, U256::from(500)), (euro, U256::from(300))];
    let mut second = vec![(dollar, U256::from(100)), (euro, U256::ZERO)];
    first.sort();
    second.sort();
    assert_eq!(totals(1), first, "epoch 1: both tokens, by address");
    assert_eq!(totals(2), second, "epoch 2: the euro with zero");

    // Both tokens' roots are epoch 2's now, and the one before is epoch 1's.
    let escrow = AdEscrow::new(world.chain.deployment.ad_escrow.address, world.chain.wallet(0));
    for token in [dollar, euro] {
        let state = escrow.tokenState(token).call().await.unwrap();
        assert_eq!(state.root.as_slice(), &settled[1].root[..16], "{token}'s root");
        assert_eq!(
            state.previousRoot.as_slice(),
            &settled[0].root[..16],
            "{token}'s previous root"
        );
    }
    // So the euro payee claims with epoch 2's proof, which the API serves.
    assert_eq!(world.payout(hoster(2), euro).await["cumulative"], "300");
    assert_eq!(world.claim_for(hoster(2), euro).await, U256::from(300));
    assert_eq!(world.claim_for(hoster(1), dollar).await, U256::from(600));
}
