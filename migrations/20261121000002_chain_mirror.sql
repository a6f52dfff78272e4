-- The chain mirror: what the indexer has seen of the contracts, keyed by
-- (chain_id, block_number, log_index) so that replaying a block is harmless.
--
-- Only events are stored; every derived state (a campaign's budget, a settlement's status,
-- a user's consent) is a view over them. A reorg therefore rolls back with one DELETE per
-- table, in the same transaction that moves the checkpoint, and there is no undo log to get
-- wrong. Views read through indexes on the natural keys; materialize them if they ever get hot.

CREATE TABLE chain_checkpoints (
    chain_id        bigint      NOT NULL,
    -- Every block up to and including this one is mirrored.
    indexed_block   bigint      NOT NULL,
    -- Blocks at or below this height are final (head minus the finality depth).
    finalized_block bigint      NOT NULL,
    -- The chain head when last seen.
    head_block      bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chain_checkpoints_pkey PRIMARY KEY (chain_id)
);

-- Recent blocks, to check each new block's parent and find the common ancestor on a reorg.
CREATE TABLE chain_blocks (
    chain_id    bigint NOT NULL,
    number      bigint NOT NULL,
    hash        bytea  NOT NULL,
    parent_hash bytea  NOT NULL,
    CONSTRAINT chain_blocks_pkey PRIMARY KEY (chain_id, number)
);

CREATE TYPE campaign_event_kind AS ENUM ('opened', 'funded', 'closed', 'withdrawn');

CREATE TABLE mirror_campaign_events (
    chain_id     bigint              NOT NULL,
    block_number bigint              NOT NULL,
    log_index    integer             NOT NULL,
    tx_hash      bytea               NOT NULL,
    kind         campaign_event_kind NOT NULL,
    campaign_id  bytea               NOT NULL,
    -- opened: advertiser; funded: funder; withdrawn: advertiser.
    account      bytea,
    token        bytea,
    amount       numeric(78, 0),
    -- funded: the budget after funding.
    remaining    numeric(78, 0),
    -- opened, closed: the campaign's end (unix seconds).
    end_time     bigint,
    CONSTRAINT mirror_campaign_events_pkey PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX mirror_campaign_events_campaign_idx ON mirror_campaign_events (chain_id, campaign_id);

CREATE TABLE mirror_settlements (
    chain_id     bigint  NOT NULL,
    block_number bigint  NOT NULL,
    log_index    integer NOT NULL,
    tx_hash      bytea   NOT NULL,
    epoch        bigint  NOT NULL,
    root         bytea   NOT NULL,
    claimable_at bigint  NOT NULL,
    CONSTRAINT mirror_settlements_pkey PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX mirror_settlements_epoch_idx ON mirror_settlements (chain_id, epoch);

CREATE TABLE mirror_settlement_debits (
    chain_id     bigint         NOT NULL,
    block_number bigint         NOT NULL,
    log_index    integer        NOT NULL,
    position     integer        NOT NULL,
    campaign_id  bytea          NOT NULL,
    amount       numeric(78, 0) NOT NULL,
    CONSTRAINT mirror_settlement_debits_pkey PRIMARY KEY (chain_id, block_number, log_index, position)
);
CREATE INDEX mirror_settlement_debits_campaign_idx ON mirror_settlement_debits (chain_id, campaign_id);

CREATE TABLE mirror_settlement_totals (
    chain_id     bigint         NOT NULL,
    block_number bigint         NOT NULL,
    log_index    integer        NOT NULL,
    position     integer        NOT NULL,
    token        bytea          NOT NULL,
    amount       numeric(78, 0) NOT NULL,
    CONSTRAINT mirror_settlement_totals_pkey PRIMARY KEY (chain_id, block_number, log_index, position)
);

CREATE TABLE mirror_settlement_revocations (
    chain_id     bigint  NOT NULL,
    block_number bigint  NOT NULL,
    log_index    integer NOT NULL,
    tx_hash      bytea   NOT NULL,
    epoch        bigint  NOT NULL,
    root         bytea   NOT NULL,
    CONSTRAINT mirror_settlement_revocations_pkey PRIMARY KEY (chain_id, block_number, log_index)
);

CREATE TABLE mirror_claims (
    chain_id          bigint         NOT NULL,
    block_number      bigint         NOT NULL,
    log_index         integer        NOT NULL,
    tx_hash           bytea          NOT NULL,
    account           bytea          NOT NULL,
    token             bytea          NOT NULL,
    cumulative_amount numeric(78, 0) NOT NULL,
    CONSTRAINT mirror_claims_pkey PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX mirror_claims_account_idx ON mirror_claims (chain_id, account, token);

CREATE TABLE mirror_consent_events (
    chain_id     bigint  NOT NULL,
    block_number bigint  NOT NULL,
    log_index    integer NOT NULL,
    tx_hash      bytea   NOT NULL,
    user_address bytea   NOT NULL,
    scope        bytea   NOT NULL,
    -- NULL for a revocation.
    expiry       bigint,
    CONSTRAINT mirror_consent_events_pkey PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX mirror_consent_events_user_idx ON mirror_consent_events (chain_id, user_address, scope);

CREATE TYPE escrow_admin_event_kind AS ENUM ('role_granted', 'role_revoked', 'paused', 'unpaused', 'challenge_window_set');

CREATE TABLE mirror_escrow_admin_events (
    chain_id     bigint                  NOT NULL,
    block_number bigint                  NOT NULL,
    log_index    integer                 NOT NULL,
    tx_hash      bytea                   NOT NULL,
    kind         escrow_admin_event_kind NOT NULL,
    role         bytea,
    account      bytea,
    window_secs  bigint,
    CONSTRAINT mirror_escrow_admin_events_pkey PRIMARY KEY (chain_id, block_number, log_index)
);

-- Derived state ------------------------------------------------------------------------

-- A settlement's status: revoked when a revocation of its epoch follows it, final when its
-- block is final, pending otherwise.
CREATE VIEW settlements_view AS
SELECT s.chain_id, s.epoch, s.root, s.claimable_at, s.block_number, s.tx_hash,
       CASE
           WHEN r.block_number IS NOT NULL THEN 'revoked'
           WHEN s.block_number <= c.finalized_block THEN 'final'
           ELSE 'pending'
       END AS status,
       (SELECT coalesce(json_agg(json_build_object('token', t.token, 'amount', t.amount::text) ORDER BY t.position), '[]')
        FROM mirror_settlement_totals t
        WHERE (t.chain_id, t.block_number, t.log_index) = (s.chain_id, s.block_number, s.log_index)) AS totals
FROM mirror_settlements s
JOIN chain_checkpoints c ON c.chain_id = s.chain_id
LEFT JOIN mirror_settlement_revocations r
       ON r.chain_id = s.chain_id AND r.epoch = s.epoch AND r.root = s.root;

-- A campaign's escrow: funded and withdrawn from its events, debited from settlements that
-- were not revoked; `block_number` is the latest block that touched it.
CREATE VIEW campaigns_view AS
WITH events AS (
    SELECT chain_id, campaign_id,
           (array_agg(account) FILTER (WHERE kind = 'opened'))[1] AS advertiser,
           (array_agg(token) FILTER (WHERE kind = 'opened'))[1] AS token,
           (array_agg(end_time ORDER BY block_number DESC, log_index DESC) FILTER (WHERE kind IN ('opened', 'closed')))[1] AS end_time,
           coalesce(sum(amount) FILTER (WHERE kind = 'funded'), 0) AS funded,
           coalesce(sum(amount) FILTER (WHERE kind = 'withdrawn'), 0) AS withdrawn,
           bool_or(kind = 'closed') AS closed_early,
           max(block_number) AS block_number
    FROM mirror_campaign_events
    GROUP BY chain_id, campaign_id
), debits AS (
    SELECT d.chain_id, d.campaign_id, sum(d.amount) AS debited, max(d.block_number) AS block_number
    FROM mirror_settlement_debits d
    JOIN mirror_settlements s USING (chain_id, block_number, log_index)
    WHERE NOT EXISTS (
        SELECT 1 FROM mirror_settlement_revocations r
        WHERE r.chain_id = s.chain_id AND r.epoch = s.epoch AND r.root = s.root)
    GROUP BY d.chain_id, d.campaign_id
)
SELECT e.chain_id, e.campaign_id, e.advertiser, e.token, e.end_time, e.funded,
       coalesce(d.debited, 0) AS debited, e.withdrawn,
       e.funded - coalesce(d.debited, 0) - e.withdrawn AS remaining,
       e.closed_early,
       greatest(e.block_number, d.block_number) AS block_number
FROM events e
LEFT JOIN debits d USING (chain_id, campaign_id);

-- Each account's claimed total per token: the latest cumulative amount.
CREATE VIEW claims_view AS
SELECT DISTINCT ON (chain_id, account, token)
       chain_id, account, token, cumulative_amount, block_number
FROM mirror_claims
ORDER BY chain_id, account, token, block_number DESC, log_index DESC;

-- Each user's current consent per scope: the latest grant or revocation.
CREATE VIEW consent_view AS
SELECT DISTINCT ON (chain_id, user_address, scope)
       chain_id, user_address, scope, expiry, block_number
FROM mirror_consent_events
ORDER BY chain_id, user_address, scope, block_number DESC, log_index DESC;
