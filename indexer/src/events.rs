//! Contract logs turned into mirror rows. One [`Rows`] batch collects the rows of many logs
//! (a backfill range, or one block) so that the store writes each table with one statement.

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::{SolEvent, SolEventInterface};

use adescrow_chain::contracts::AdEscrow::{self, AdEscrowEvents};
use adescrow_chain::contracts::ConsentRegistry::ConsentRegistryEvents;

/// Where a log sits in the chain.
#[derive(Debug, Clone, Copy)]
pub struct LogPosition {
    pub block_number: i64,
    pub log_index: i32,
    pub tx_hash: B256,
}

/// Column vectors, one struct per mirror table (the shape `UNNEST` inserts take).
#[derive(Debug, Default)]
pub struct Rows {
    pub campaign_events: Table<CampaignEventRow>,
    pub settlements: Table<SettlementRow>,
    pub debits: Table<DebitRow>,
    pub totals: Table<TotalRow>,
    pub revocations: Table<RevocationRow>,
    pub claims: Table<ClaimRow>,
    pub consent: Table<ConsentRow>,
    pub admin: Table<AdminRow>,
}

/// Rows of one table with their positions.
#[derive(Debug)]
pub struct Table<R> {
    pub positions: Vec<LogPosition>,
    pub rows: Vec<R>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Self {
            positions: Vec::new(),
            rows: Vec::new(),
        }
    }
}

impl<R> Table<R> {
    fn push(&mut self, at: LogPosition, row: R) {
        self.positions.push(at);
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[derive(Debug)]
pub struct CampaignEventRow {
    pub kind: &'static str,
    pub campaign_id: B256,
    pub account: Option<Address>,
    pub token: Option<Address>,
    pub amount: Option<U256>,
    pub remaining: Option<U256>,
    pub end_time: Option<i64>,
}

#[derive(Debug)]
pub struct SettlementRow {
    pub epoch: i64,
    pub root: B256,
    pub claimable_at: i64,
}

#[derive(Debug)]
pub struct DebitRow {
    pub position: i32,
    pub campaign_id: B256,
    pub amount: U256,
}

#[derive(Debug)]
pub struct TotalRow {
    pub position: i32,
    pub token: Address,
    pub amount: U256,
}

#[derive(Debug)]
pub struct RevocationRow {
    pub epoch: i64,
    pub root: B256,
}

/// A claim as `Claimed(uint256 indexAndAmount)` logs it: the payee's index and its
/// cumulative amount, each below 2^128. The account and token are not in the log; the
/// index names them (`payout_indexes`, joined by the views).
#[derive(Debug)]
pub struct ClaimRow {
    pub leaf_index: U256,
    pub cumulative_amount: U256,
}

impl ClaimRow {
    fn new(index_and_amount: U256) -> Self {
        Self {
            leaf_index: index_and_amount >> 128,
            cumulative_amount: index_and_amount & U256::from(u128::MAX),
        }
    }
}

#[derive(Debug)]
pub struct ConsentRow {
    pub user: Address,
    pub scope: B256,
    pub expiry: Option<i64>,
}

#[derive(Debug)]
pub struct AdminRow {
    pub kind: &'static str,
    pub role: Option<B256>,
    pub account: Option<Address>,
    pub window_secs: Option<i64>,
}

/// The contracts the mirror follows.
#[derive(Debug, Clone, Copy)]
pub struct Contracts {
    pub escrow: Address,
    pub consent: Address,
}

impl Rows {
    /// Number of rows over all tables.
    pub fn len(&self) -> usize {
        self.campaign_events.len()
            + self.settlements.len()
            + self.debits.len()
            + self.totals.len()
            + self.revocations.len()
            + self.claims.len()
            + self.consent.len()
            + self.admin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the rows of one log. Logs of other contracts, and events the mirror does not
    /// keep (role admin changes, EIP-712 domain changes), add nothing.
    ///
    /// A log of the escrow without topics is a claim: `Claimed` is the escrow's only
    /// anonymous event, and every other event has its signature as the first topic.
    pub fn push_log(&mut self, contracts: Contracts, log: &Log) {
        let (Some(block_number), Some(log_index), Some(tx_hash)) =
            (log.block_number, log.log_index, log.transaction_hash)
        else {
            return; // pending logs have no position; the mirror only takes mined ones
        };
        let at = LogPosition {
            block_number: block_number as i64,
            log_index: log_index as i32,
            tx_hash,
        };
        if log.address() == contracts.escrow {
            if log.topics().is_empty() {
                if let Ok(claim) = AdEscrow::Claimed::decode_raw_log(log.topics(), &log.data().data) {
                    self.claims.push(at, ClaimRow::new(claim.indexAndAmount));
                }
            } else if let Ok(event) = AdEscrowEvents::decode_log(&log.inner) {
                self.push_escrow(at, event.data);
            }
        } else if log.address() == contracts.consent
            && let Ok(event) = ConsentRegistryEvents::decode_log(&log.inner)
        {
            match event.data {
                ConsentRegistryEvents::ConsentGranted(e) => self.consent.push(
                    at,
                    ConsentRow {
                        user: e.user,
                        scope: e.scope,
                        expiry: Some(e.expiry as i64),
                    },
                ),
                ConsentRegistryEvents::ConsentRevoked(e) => self.consent.push(
                    at,
                    ConsentRow {
                        user: e.user,
                        scope: e.scope,
                        expiry: None,
                    },
                ),
                _ => {}
            }
        }
    }

    fn push_escrow(&mut self, at: LogPosition, event: AdEscrowEvents) {
        let campaign = |kind, campaign_id| CampaignEventRow {
            kind,
            campaign_id,
            account: None,
            token: None,
            amount: None,
            remaining: None,
            end_time: None,
        };
        let admin = |kind| AdminRow {
            kind,
            role: None,
            account: None,
            window_secs: None,
        };
        match event {
            AdEscrowEvents::CampaignOpened(e) => self.campaign_events.push(
                at,
                CampaignEventRow {
                    account: Some(e.advertiser),
                    token: Some(e.token),
                    end_time: Some(e.end.to::<i64>()),
                    ..campaign("opened", e.campaignId)
                },
            ),
            AdEscrowEvents::CampaignFunded(e) => self.campaign_events.push(
                at,
                CampaignEventRow {
                    account: Some(e.from),
                    amount: Some(e.amount),
                    remaining: Some(e.remaining),
                    ..campaign("funded", e.campaignId)
                },
            ),
            AdEscrowEvents::CampaignClosed(e) => self.campaign_events.push(
                at,
                CampaignEventRow {
                    end_time: Some(e.end.to::<i64>()),
                    ..campaign("closed", e.campaignId)
                },
            ),
            AdEscrowEvents::CampaignWithdrawn(e) => self.campaign_events.push(
                at,
                CampaignEventRow {
                    account: Some(e.advertiser),
                    amount: Some(e.amount),
                    ..campaign("withdrawn", e.campaignId)
                },
            ),
            AdEscrowEvents::Settled(e) => {
                self.settlements.push(
                    at,
                    SettlementRow {
                        epoch: e.epoch as i64,
                        root: e.root,
                        claimable_at: e.claimableAt.to::<i64>(),
                    },
                );
                for (i, d) in e.debits.iter().enumerate() {
                    self.debits.push(
                        at,
                        DebitRow {
                            position: i as i32,
                            campaign_id: d.campaignId,
                            amount: d.amount,
                        },
                    );
                }
                for (i, t) in e.totals.iter().enumerate() {
                    self.totals.push(
                        at,
                        TotalRow {
                            position: i as i32,
                            token: t.token,
                            amount: t.amount,
                        },
                    );
                }
            }
            AdEscrowEvents::SettlementRevoked(e) => self.revocations.push(
                at,
                RevocationRow {
                    epoch: e.epoch as i64,
                    root: e.root,
                },
            ),
            // Claims have no topics and are read in `push_log`. A log with a first topic the
            // ABI does not know may still decode as the anonymous event here; it is no claim.
            AdEscrowEvents::Claimed(_) => {}
            AdEscrowEvents::RoleGranted(e) => self.admin.push(
                at,
                AdminRow {
                    role: Some(e.role),
                    account: Some(e.account),
                    ..admin("role_granted")
                },
            ),
            AdEscrowEvents::RoleRevoked(e) => self.admin.push(
                at,
                AdminRow {
                    role: Some(e.role),
                    account: Some(e.account),
                    ..admin("role_revoked")
                },
            ),
            AdEscrowEvents::PauseSet(e) => self.admin.push(at, admin(if e.paused { "paused" } else { "unpaused" })),
            AdEscrowEvents::ChallengeWindowSet(e) => self.admin.push(
                at,
                AdminRow {
                    window_secs: Some(e.window.to::<i64>()),
                    ..admin("challenge_window_set")
                },
            ),
            AdEscrowEvents::RoleAdminChanged(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Bytes, LogData};

    use super::*;

    const ESCROW: Address = Address::repeat_byte(0xe5);
    const CONTRACTS: Contracts = Contracts {
        escrow: ESCROW,
        consent: Address::repeat_byte(0xc0),
    };

    fn log(address: Address, topics: Vec<B256>, data: U256) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address,
                data: LogData::new_unchecked(topics, Bytes::from(data.to_be_bytes::<32>().to_vec())),
            },
            block_number: Some(9),
            log_index: Some(2),
            transaction_hash: Some(B256::repeat_byte(1)),
            ..Log::default()
        }
    }

    #[test]
    fn an_escrow_log_without_topics_is_a_claim_split_into_index_and_amount() {
        let mut rows = Rows::default();
        let word = (U256::from(1_000_001u64) << 128) | U256::from(u128::MAX);
        rows.push_log(CONTRACTS, &log(ESCROW, Vec::new(), word));
        assert_eq!(rows.len(), 1);
        let claim = &rows.claims.rows[0];
        assert_eq!(claim.leaf_index, U256::from(1_000_001u64));
        assert_eq!(claim.cumulative_amount, U256::from(u128::MAX));
        assert_eq!(rows.claims.positions[0].block_number, 9);
    }

    #[test]
    fn other_logs_are_no_claims() {
        let mut rows = Rows::default();
        // Another contract's anonymous log.
        rows.push_log(CONTRACTS, &log(Address::repeat_byte(7), Vec::new(), U256::from(1u64)));
        // An escrow log whose first topic no event of the ABI has.
        rows.push_log(CONTRACTS, &log(ESCROW, vec![B256::repeat_byte(0xab)], U256::from(1u64)));
        assert!(rows.is_empty(), "{rows:?}");
    }
}
