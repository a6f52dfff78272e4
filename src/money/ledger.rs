//! The double-entry ledger: every movement of money owed, in one token, as a posting whose
//! entries sum to zero. Escrow entries are negative (spend leaves an escrow account: a
//! campaign, an order or a program budget); payee entries are positive when earned and
//! negative when moved out (a transfer, a clawback). Postgres refuses a posting that does not
//! balance and any change to a posted entry, so balances derived from the entries are the
//! truth. Billing, the programs and the holds post here; the relayer reads it.
//!
//! Three rules keep every payout backed by escrow (see ARCHITECTURE.md, "The money core"):
//!
//! - An order or a program budget is never debited beyond what it holds on chain; a
//!   campaign's spend is bounded by billing's own budget check before it posts.
//! - A payee's released balance never goes below zero: a transfer or clawback beyond it is
//!   refused.
//! - A payee's leaf never goes down, so a payee moved below what its leaf already paid
//!   (its *paid mark*) owes the difference. The credits of the posting that did it are held
//!   (reason `recovery`) until the payer's later earnings have repaid it; without that, the
//!   tree would promise more than the escrows were debited for.
//!
//! A held posting keeps its escrow debits and its payee credits out of epochs until the hold
//! ends ([`crate::money::holds`]); its payee debits apply at once, so holding never lets a
//! payee spend money twice.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::money::escrow::{self, EscrowError};
use crate::money::holds::HoldReason;

/// What a posting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "posting_source", rename_all = "snake_case")]
pub enum Source {
    ReceiptBatch,
    Referral,
    Marketplace,
    Adjustment,
    /// A sale debited from its order.
    OrderSale,
    /// A bonus, credit or prize debited from a program budget.
    Program,
    /// Money moved between payees (a commission out of the platform's share).
    Transfer,
    /// Earnings taken back from a payee.
    Clawback,
    /// A hold's release or reversal.
    Hold,
}

/// The party to a posting an entry belongs to: the escrow account whose budget it spends,
/// or the kind of payee that earns it. (Postgres calls the type `ledger_role`; it is no
/// user role.) Payees are paid per address: the party only says in what capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "ledger_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Escrow,
    Hoster,
    Witness,
    Platform,
    Viewer,
    Seller,
    Referrer,
    Affiliate,
    /// Paid back a refund after its order's refund window.
    Buyer,
    /// Paid back the price of billed receipts an adjustment reversed.
    Advertiser,
    /// Won a leaderboard prize.
    Winner,
    /// Funded a campaign with a promo credit: repaid from the promotion's program budget.
    Treasury,
    /// Resold the platform: its markup, out of the platform's share.
    Reseller,
}

/// A payee in one capacity.
pub type Payee = (Party, Address);

/// A hold a posting asks for: why, and not before when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    pub reason: HoldReason,
    pub until: Option<OffsetDateTime>,
    /// Recovery holds: the payee whose debt must be repaid first.
    pub debtor: Option<Address>,
    /// Not released before an epoch covering this posting is the chain's current root
    /// (settled and past its challenge window): the spend an entry came from is final.
    pub settled_after: Option<i64>,
    /// What it waits for, in words (1 to 500 characters).
    pub note: String,
}

/// A posting being built, in one token. Amounts for the same account add up, so a batch of
/// a thousand receipts posts a handful of entries.
#[derive(Debug, Clone, Default)]
pub struct Posting {
    spent: BTreeMap<Uuid, u128>,
    earned: BTreeMap<Payee, u128>,
    paid: BTreeMap<Payee, u128>,
    hold: Option<NewHold>,
}

impl Posting {
    /// Spends `amount` of escrow account `escrow`.
    pub fn spend(&mut self, escrow: Uuid, amount: Amount) {
        if !amount.is_zero() {
            *self.spent.entry(escrow).or_default() += amount.0;
        }
    }

    /// Credits `payee` with `amount`.
    pub fn earn(&mut self, party: Party, payee: Address, amount: Amount) {
        if !amount.is_zero() {
            *self.earned.entry((party, payee)).or_default() += amount.0;
        }
    }

    /// Moves `amount` from one payee to another.
    pub fn transfer(&mut self, from: Payee, to: Payee, amount: Amount) {
        if !amount.is_zero() {
            *self.paid.entry(from).or_default() += amount.0;
            *self.earned.entry(to).or_default() += amount.0;
        }
    }

    /// Holds the posting's escrow debits and payee credits until the hold ends.
    pub fn hold(mut self, hold: NewHold) -> Self {
        self.hold = Some(hold);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.earned.is_empty()
    }

    /// The entries to write for this posting, the `index`-th of its batch.
    fn entries(&self, index: usize) -> impl Iterator<Item = Entry> + '_ {
        let held = self.hold.is_some();
        let entry = move |party, escrow, payee: Option<Address>, amount: &u128, debit, held| Entry {
            posting: index,
            party,
            escrow,
            payee: payee.map(SqlAddress),
            amount: Amount(*amount),
            debit,
            held,
        };
        let spent = self
            .spent
            .iter()
            .map(move |(escrow, amount)| entry(Party::Escrow, Some(*escrow), None, amount, true, held));
        let earned = self
            .earned
            .iter()
            .map(move |((party, payee), amount)| entry(*party, None, Some(*payee), amount, false, held));
        // Payee debits apply at once: what is moved out is gone, held or not.
        let paid = self
            .paid
            .iter()
            .map(move |((party, payee), amount)| entry(*party, None, Some(*payee), amount, true, false));
        spent.chain(earned).chain(paid)
    }

    /// Whether what escrows spend and payees pay equals what payees earn.
    pub fn balances(&self) -> bool {
        let out: u128 = self.spent.values().chain(self.paid.values()).sum();
        out == self.earned.values().sum::<u128>()
    }
}

/// Why a posting was refused. Nothing of it is written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the posting does not balance: what is spent and paid must equal what is earned")]
    Unbalanced,
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error("{payee} has {balance} released in this token; moving {wanted} out would leave it below zero")]
    PayeeShort {
        payee: Address,
        balance: Amount,
        wanted: Amount,
    },
    #[error("a posting that leaves a payer owing can move money out of one payer only")]
    SeveralDebtors,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A posting as written, or found already written under the same source and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    pub token: Address,
    pub posting_id: i64,
    pub hold_id: Option<i64>,
    /// `false` when the source had posted this already (nothing was written).
    pub created: bool,
}

/// Writes postings, one per token, all from one source, in the caller's transaction. A
/// source id already posted in a token is not posted again: its first posting comes back.
pub async fn post(
    conn: &mut PgConnection,
    chain_id: u64,
    source: Source,
    source_id: &str,
    postings: &BTreeMap<Address, Posting>,
) -> Result<Vec<Posted>, LedgerError> {
    let postings: Vec<(Address, Posting)> = postings
        .iter()
        .filter(|(_, posting)| !posting.is_empty())
        .map(|(token, posting)| (*token, posting.clone()))
        .collect();
    if postings.is_empty() {
        return Ok(Vec::new());
    }
    if !postings.iter().all(|(_, posting)| posting.balances()) {
        return Err(LedgerError::Unbalanced);
    }
    let mut prepared = Vec::with_capacity(postings.len());
    for (token, mut posting) in postings {
        match checked(conn, chain_id, token, &posting).await {
            Ok(recovery) => posting.hold = recovery.or(posting.hold),
            // A source posts once per token: a repeat the rules refuse (the first used the
            // funds) is still the first, which `write` returns as it was.
            Err(refusal @ (LedgerError::Escrow(_) | LedgerError::PayeeShort { .. } | LedgerError::SeveralDebtors)) => {
                if !posted_before(conn, source, source_id, token).await? {
                    return Err(refusal);
                }
            }
            Err(error) => return Err(error),
        }
        prepared.push((token, posting));
    }
    write(conn, source, source_id, &prepared).await
}

/// The checks a new posting must pass; returns the recovery hold it needs, if any.
async fn checked(
    conn: &mut PgConnection,
    chain_id: u64,
    token: Address,
    posting: &Posting,
) -> Result<Option<NewHold>, LedgerError> {
    check_escrows(conn, chain_id, token, posting).await?;
    check_payers(conn, chain_id, token, posting).await
}

async fn posted_before(
    conn: &mut PgConnection,
    source: Source,
    source_id: &str,
    token: Address,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM ledger_postings WHERE source = $1 AND source_id = $2 AND token = $3) AS "posted!""#,
        source as Source,
        source_id,
        token.as_slice()
    )
    .fetch_one(conn)
    .await
}

/// Orders and program budgets must hold what the posting spends (a posting held because the
/// budget is empty waits for the funds instead).
async fn check_escrows(
    conn: &mut PgConnection,
    chain_id: u64,
    token: Address,
    posting: &Posting,
) -> Result<(), LedgerError> {
    let waits_for_funds = posting
        .hold
        .as_ref()
        .is_some_and(|h| h.reason == HoldReason::BudgetEmpty);
    let ids: Vec<Uuid> = posting.spent.keys().copied().collect();
    for funds in escrow::lock_funds(conn, chain_id, &ids).await? {
        if funds.token != token {
            return Err(EscrowError::WrongToken {
                escrow: funds.chain_escrow_id,
            }
            .into());
        }
        if waits_for_funds {
            continue;
        }
        let wanted = Amount(posting.spent[&funds.id]);
        funds.cover(wanted)?;
    }
    Ok(())
}

/// The highest posting id below which every posting is committed (0 for an empty ledger),
/// taken in the caller's transaction. Ids are drawn when a posting is inserted, so they
/// commit out of order; SHARE mode waits for every transaction that is inserting postings and
/// keeps new ones out until the caller's transaction ends, so a posting that commits later
/// always has a higher id. A reader that follows the ledger by id (an epoch's close, the
/// programs' cursors) reads up to this mark and never skips a posting.
pub async fn committed_watermark(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query!("LOCK TABLE ledger_postings IN SHARE MODE")
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar!(r#"SELECT coalesce(max(id), 0) AS "watermark!" FROM ledger_postings"#)
        .fetch_one(&mut *conn)
        .await
}

/// [`committed_watermark`] in a transaction of its own, for a reader that then follows the
/// ledger up to it: new postings wait only for this short transaction.
pub async fn committed_watermark_now(db: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let watermark = committed_watermark(&mut tx).await?;
    tx.commit().await?;
    Ok(watermark)
}

/// Where a payee stands in one token: its released balance, and the most any leaf has paid
/// it or will (its *paid mark*: the latest built leaf, or its released balance as of a
/// closed epoch not built yet, whichever is higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub released: Amount,
    pub paid_mark: Amount,
}

impl Standing {
    /// What the payee owes: what its leaves paid beyond its released balance.
    pub fn owes(&self) -> Amount {
        self.paid_mark.saturating_sub(self.released)
    }
}

/// Reads `payee`'s standing in `token`: the latest built leaf and its balance, plus the
/// released entries since that epoch's watermark (an index range on `(payee, posting_id)`).
pub async fn standing(
    conn: &mut PgConnection,
    chain_id: u64,
    payee: Address,
    token: Address,
) -> Result<Standing, sqlx::Error> {
    let row = sqlx::query!(
        r#"WITH built AS (
               SELECT epoch, last_posting FROM settlement_epochs
               WHERE chain_id = $1 AND root IS NOT NULL ORDER BY epoch DESC LIMIT 1),
           closed AS (SELECT max(last_posting) AS last_posting FROM settlement_epochs WHERE chain_id = $1),
           leaf AS (
               SELECT l.cumulative, l.balance FROM payout_leaves l JOIN built b ON l.epoch = b.epoch
               WHERE l.chain_id = $1 AND l.account = $2 AND l.token = $3)
           SELECT (SELECT cumulative FROM leaf) AS "cumulative: Amount",
                  (SELECT balance FROM leaf) AS "balance: Amount",
                  s.credits AS "credits!: Amount", s.debits AS "debits!: Amount",
                  s.closed_credits AS "closed_credits!: Amount", s.closed_debits AS "closed_debits!: Amount"
           FROM (SELECT coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0) AS credits,
                        coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0) AS debits,
                        coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND e.posting_id <= c.last_posting), 0) AS closed_credits,
                        coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0 AND e.posting_id <= c.last_posting), 0) AS closed_debits
                 FROM closed c
                 LEFT JOIN ledger_entries e
                   ON e.payee = $2 AND e.hold_id IS NULL
                  AND e.posting_id > coalesce((SELECT last_posting FROM built), 0)
                  AND EXISTS (SELECT 1 FROM ledger_postings p WHERE p.id = e.posting_id AND p.token = $3)) s"#,
        chain_id as i64,
        payee.as_slice(),
        token.as_slice()
    )
    .fetch_one(conn)
    .await?;
    let leaf = row.cumulative.unwrap_or(Amount::ZERO);
    let base = row.balance.unwrap_or(Amount::ZERO);
    let released = shifted(base, row.credits, row.debits)?;
    let at_closed = shifted(base, row.closed_credits, row.closed_debits)?;
    Ok(Standing {
        released,
        paid_mark: leaf.max(at_closed),
    })
}

/// `base` plus `credits` minus `debits`. The ledger never lets a released balance go below
/// zero, so a result that would is a broken invariant, reported as a decode error.
fn shifted(base: Amount, credits: Amount, debits: Amount) -> Result<Amount, sqlx::Error> {
    base.checked_add(credits)
        .and_then(|sum| sum.0.checked_sub(debits.0))
        .map(Amount)
        .ok_or_else(|| {
            sqlx::Error::Decode(format!("a released balance of {base} + {credits} - {debits} is out of range").into())
        })
}

/// Payers must have what they move out; one left owing what its leaf paid makes the posting's
/// credits wait (a `recovery` hold) until it is repaid. Returns that hold, if it is needed.
async fn check_payers(
    conn: &mut PgConnection,
    chain_id: u64,
    token: Address,
    posting: &Posting,
) -> Result<Option<NewHold>, LedgerError> {
    if posting.paid.is_empty() {
        return Ok(None);
    }
    // An epoch closing now waits for this transaction (its SHARE lock conflicts with this
    // one), so the paid mark read below cannot move under the posting.
    sqlx::query!("LOCK TABLE ledger_postings IN ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    let mut payers: BTreeMap<Address, u128> = BTreeMap::new();
    for ((_, payer), amount) in &posting.paid {
        *payers.entry(*payer).or_default() += amount;
    }
    let mut debtors = Vec::new();
    for (payer, amount) in payers {
        // Two postings moving money out of one payer take turns.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended('ledger-payer:' || encode($1::bytea || $2::bytea, 'hex'), 0))",
            payer.as_slice(),
            token.as_slice()
        )
        .execute(&mut *conn)
        .await?;
        let standing = standing(conn, chain_id, payer, token).await?;
        let wanted = Amount(amount);
        let Some(after) = standing.released.0.checked_sub(amount) else {
            return Err(LedgerError::PayeeShort {
                payee: payer,
                balance: standing.released,
                wanted,
            });
        };
        if Amount(after) < standing.paid_mark {
            debtors.push((payer, standing.paid_mark.saturating_sub(Amount(after))));
        }
    }
    match debtors.as_slice() {
        [] => Ok(None),
        [(debtor, owed)] => {
            let asked = posting.hold.as_ref();
            let note = match asked {
                Some(hold) => format!("{}; and until {debtor} has repaid the {owed} it owes", hold.note),
                None => format!("until {debtor} has repaid the {owed} its payouts already included"),
            };
            Ok(Some(NewHold {
                reason: HoldReason::Recovery,
                until: asked.and_then(|h| h.until),
                debtor: Some(*debtor),
                settled_after: asked.and_then(|h| h.settled_after),
                note: note.chars().take(500).collect(),
            }))
        }
        _ => Err(LedgerError::SeveralDebtors),
    }
}

/// One entry to write.
struct Entry {
    posting: usize,
    party: Party,
    escrow: Option<Uuid>,
    payee: Option<SqlAddress>,
    amount: Amount,
    debit: bool,
    held: bool,
}

async fn write(
    conn: &mut PgConnection,
    source: Source,
    source_id: &str,
    postings: &[(Address, Posting)],
) -> Result<Vec<Posted>, LedgerError> {
    let tokens: Vec<SqlAddress> = postings.iter().map(|(token, _)| SqlAddress(*token)).collect();
    let inserted = sqlx::query!(
        r#"INSERT INTO ledger_postings (token, source, source_id)
           SELECT t, $2, $3 FROM UNNEST($1::bytea[]) WITH ORDINALITY AS u(t, n) ORDER BY n
           ON CONFLICT (source, source_id, token) DO NOTHING
           RETURNING id, token AS "token: SqlAddress""#,
        &tokens as &[SqlAddress],
        source as Source,
        source_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let created: BTreeMap<Address, i64> = inserted.into_iter().map(|row| (row.token.0, row.id)).collect();

    let mut posted = Vec::with_capacity(postings.len());
    let mut entries = Vec::new();
    let mut holds = Vec::new();
    for (index, (token, posting)) in postings.iter().enumerate() {
        let Some(&posting_id) = created.get(token) else {
            posted.push(existing(conn, source, source_id, *token).await?);
            continue;
        };
        if let Some(hold) = &posting.hold {
            holds.push((posting_id, hold));
        }
        entries.extend(posting.entries(index));
        posted.push(Posted {
            token: *token,
            posting_id,
            hold_id: None,
            created: true,
        });
    }

    let mut hold_ids: BTreeMap<i64, i64> = BTreeMap::new();
    for (posting_id, hold) in holds {
        let id = crate::money::holds::create(conn, posting_id, hold).await?;
        hold_ids.insert(posting_id, id);
    }
    for posted in &mut posted {
        if posted.created {
            posted.hold_id = hold_ids.get(&posted.posting_id).copied();
        }
    }

    let (mut posting_ids, mut parties, mut escrows, mut payees, mut amounts, mut debits, mut hold_column) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for entry in entries {
        let posting_id = posted[entry.posting].posting_id;
        posting_ids.push(posting_id);
        parties.push(entry.party);
        escrows.push(entry.escrow);
        payees.push(entry.payee);
        amounts.push(entry.amount);
        debits.push(entry.debit);
        hold_column.push(if entry.held {
            hold_ids.get(&posting_id).copied()
        } else {
            None
        });
    }
    if !posting_ids.is_empty() {
        // Amounts go in unsigned; a debit is stored negated.
        sqlx::query!(
            "INSERT INTO ledger_entries (posting_id, role, escrow_id, payee, amount, hold_id)
             SELECT p, r, c, y, CASE WHEN d THEN -a ELSE a END, h
             FROM UNNEST($1::bigint[], $2::ledger_role[], $3::uuid[], $4::bytea[], $5::numeric[], $6::bool[], $7::bigint[])
                  AS u(p, r, c, y, a, d, h)",
            &posting_ids,
            &parties as &[Party],
            &escrows as &[Option<Uuid>],
            &payees as &[Option<SqlAddress>],
            &amounts as &[Amount],
            &debits,
            &hold_column as &[Option<i64>]
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(posted)
}

/// A posting the source wrote before.
async fn existing(
    conn: &mut PgConnection,
    source: Source,
    source_id: &str,
    token: Address,
) -> Result<Posted, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT p.id, h.id AS \"hold_id?\" FROM ledger_postings p LEFT JOIN ledger_holds h ON h.posting_id = p.id
         WHERE p.source = $1 AND p.source_id = $2 AND p.token = $3",
        source as Source,
        source_id,
        token.as_slice()
    )
    .fetch_one(conn)
    .await?;
    Ok(Posted {
        token,
        posting_id: row.id,
        hold_id: row.hold_id,
        created: false,
    })
}

/// A payee's money in one token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Released: what payout trees include.
    pub earned: Amount,
    /// Held until their holds end.
    pub held: Amount,
}

/// What a payee has earned per token, summed from its entries.
pub async fn balances(db: impl sqlx::PgExecutor<'_>, payee: Address) -> Result<Vec<Balance>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT token AS "token!: SqlAddress", released AS "released!: Amount", held AS "held!: Amount"
           FROM payee_balances WHERE payee = $1 ORDER BY token"#,
        payee.as_slice()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Balance {
            token: row.token.0,
            earned: row.released,
            held: row.held,
        })
        .collect())
}
