//! The double-entry ledger: every movement of money owed, in one token, as a posting whose
//! entries sum to zero. Campaign entries are negative (budget spent), payee entries positive
//! (earned). Postgres refuses a posting that does not balance (a deferred constraint
//! trigger) and any change to a posted entry, so balances derived from the entries are the
//! truth. Billing posts here; referrals, marketplace and adjustments will too; the relayer
//! reads it.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;

/// What a posting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "posting_source", rename_all = "snake_case")]
pub enum Source {
    ReceiptBatch,
    Referral,
    Marketplace,
    Adjustment,
}

/// The party to a posting an entry belongs to: the campaign whose budget it spends, or the
/// kind of payee that earns it. (Postgres calls the type `ledger_role`; it is no user role.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "ledger_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Campaign,
    Hoster,
    Witness,
    Platform,
    Viewer,
}

/// An account: a campaign's spend, or a payee's earnings as one party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    Campaign(Uuid),
    Payee(Party, Address),
}

/// A posting being built: amounts spent by campaigns and earned by payees, in one token.
/// Amounts for the same account add up, so a batch of a thousand receipts posts a handful
/// of entries.
#[derive(Debug, Clone, Default)]
pub struct Posting {
    spent: BTreeMap<Uuid, u128>,
    earned: BTreeMap<(Party, Address), u128>,
}

impl Posting {
    pub fn spend(&mut self, campaign: Uuid, amount: Amount) {
        *self.spent.entry(campaign).or_default() += amount.0;
    }

    pub fn earn(&mut self, party: Party, payee: Address, amount: Amount) {
        if !amount.is_zero() {
            *self.earned.entry((party, payee)).or_default() += amount.0;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.spent.is_empty()
    }

    /// Whether what campaigns spend equals what payees earn.
    pub fn balances(&self) -> bool {
        self.spent.values().sum::<u128>() == self.earned.values().sum::<u128>()
    }

    /// Each account and the amount it moves: spent by a campaign, earned by a payee.
    fn entries(&self) -> impl Iterator<Item = (Account, Amount)> + '_ {
        let spent = self
            .spent
            .iter()
            .map(|(campaign, amount)| (Account::Campaign(*campaign), Amount(*amount)));
        let earned = self
            .earned
            .iter()
            .map(|((party, payee), amount)| (Account::Payee(*party, *payee), Amount(*amount)));
        spent.chain(earned)
    }
}

/// Writes postings, one per token, all from one source. The caller's transaction makes
/// them part of whatever else it writes.
pub async fn post(
    conn: &mut PgConnection,
    source: Source,
    source_id: &str,
    postings: &BTreeMap<Address, Posting>,
) -> Result<(), sqlx::Error> {
    let postings: Vec<_> = postings.iter().filter(|(_, posting)| !posting.is_empty()).collect();
    if postings.is_empty() {
        return Ok(());
    }
    let tokens: Vec<SqlAddress> = postings.iter().map(|(token, _)| SqlAddress(**token)).collect();
    let ids = sqlx::query!(
        "INSERT INTO ledger_postings (token, source, source_id)
         SELECT t, $2, $3 FROM UNNEST($1::bytea[]) WITH ORDINALITY AS u(t, n) ORDER BY n
         RETURNING id",
        &tokens as &[SqlAddress],
        source as Source,
        source_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let (mut posting_ids, mut parties, mut campaigns, mut payees, mut amounts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, (_, posting)) in ids.iter().zip(&postings) {
        for (account, amount) in posting.entries() {
            posting_ids.push(row.id);
            match account {
                Account::Campaign(campaign) => {
                    parties.push(Party::Campaign);
                    campaigns.push(Some(campaign));
                    payees.push(None);
                }
                Account::Payee(party, payee) => {
                    parties.push(party);
                    campaigns.push(None);
                    payees.push(Some(SqlAddress(payee)));
                }
            }
            amounts.push(amount);
        }
    }
    // Amounts go in unsigned; a campaign's entry is what it spent, so it is stored negated.
    sqlx::query!(
        "INSERT INTO ledger_entries (posting_id, role, campaign_id, payee, amount)
         SELECT p, r, c, y, CASE WHEN r = 'campaign' THEN -a ELSE a END
         FROM UNNEST($1::bigint[], $2::ledger_role[], $3::uuid[], $4::bytea[], $5::numeric[]) AS u(p, r, c, y, a)",
        &posting_ids,
        &parties as &[Party],
        &campaigns as &[Option<Uuid>],
        &payees as &[Option<SqlAddress>],
        &amounts as &[Amount]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A payee's earnings in one token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub earned: Amount,
}

/// What a payee has earned per token, summed from its entries.
pub async fn balances(db: impl PgExecutor<'_>, payee: Address) -> Result<Vec<Balance>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT token AS "token!: SqlAddress", earned AS "earned!: Amount" FROM payee_balances WHERE payee = $1 ORDER BY token"#,
        payee.as_slice()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Balance {
            token: row.token.0,
            earned: row.earned,
        })
        .collect())
}
