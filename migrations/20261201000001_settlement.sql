-- Settlement: epochs that freeze the ledger, their payout trees, and the outbox through
-- which every relayer transaction reaches the chain.

-- An epoch covers every ledger posting with an id at or below `last_posting` (cumulatively:
-- epoch N covers epoch N - 1 and more). Closing takes the lock that makes that watermark
-- safe (see relayer/epoch.rs); the tree is built afterwards and recorded with `root`.
CREATE TABLE settlement_epochs (
    chain_id     bigint      NOT NULL,
    epoch        bigint      NOT NULL,
    last_posting bigint      NOT NULL,
    closed_at    timestamptz NOT NULL DEFAULT now(),
    -- Set once the payout tree, debits and proofs are stored.
    root         bytea,
    built_at     timestamptz,
    payees       integer,
    -- Set once the settlement has its confirmations on chain.
    settled_tx   bytea,
    confirmed_at timestamptz,
    -- Set once the chain's current root (the one claims verify against) is this epoch's or
    -- a later one's: right away without a challenge window, after activate() with one.
    activated_at timestamptz,
    CONSTRAINT settlement_epochs_pkey PRIMARY KEY (chain_id, epoch),
    CONSTRAINT settlement_epochs_positive CHECK (epoch > 0),
    CONSTRAINT settlement_epochs_built CHECK ((root IS NULL) = (built_at IS NULL)),
    CONSTRAINT settlement_epochs_confirmed_built CHECK (confirmed_at IS NULL OR root IS NOT NULL)
);

-- What each campaign spent in an epoch (its postings since the previous epoch).
CREATE TABLE settlement_debits (
    chain_id          bigint         NOT NULL,
    epoch             bigint         NOT NULL,
    campaign_id       uuid           NOT NULL,
    chain_campaign_id bytea          NOT NULL,
    token             bytea          NOT NULL,
    amount            numeric(78, 0) NOT NULL,
    CONSTRAINT settlement_debits_pkey PRIMARY KEY (chain_id, epoch, campaign_id),
    CONSTRAINT settlement_debits_epoch_fkey FOREIGN KEY (chain_id, epoch) REFERENCES settlement_epochs (chain_id, epoch),
    CONSTRAINT settlement_debits_positive CHECK (amount > 0)
);

-- Every payee's cumulative earnings per token as of an epoch, with its Merkle proof (the
-- sibling hashes bottom-up, concatenated), so that a proof is one indexed lookup. Only the
-- latest epochs are kept: a root replaces every earlier one.
CREATE TABLE payout_leaves (
    chain_id   bigint         NOT NULL,
    epoch      bigint         NOT NULL,
    account    bytea          NOT NULL,
    token      bytea          NOT NULL,
    cumulative numeric(78, 0) NOT NULL,
    proof      bytea          NOT NULL,
    CONSTRAINT payout_leaves_pkey PRIMARY KEY (chain_id, epoch, account, token),
    CONSTRAINT payout_leaves_epoch_fkey FOREIGN KEY (chain_id, epoch) REFERENCES settlement_epochs (chain_id, epoch),
    CONSTRAINT payout_leaves_proof_length CHECK (octet_length(proof) % 32 = 0)
);

-- The outbox ---------------------------------------------------------------------------
-- One row per transaction the relayer owes the chain; its nonce is taken in the same
-- database transaction that creates the row. Every signed attempt (replacements included)
-- is stored before it is broadcast.

CREATE TYPE outbox_kind AS ENUM ('settle', 'activate', 'consent');
-- queued: no attempt signed yet; sent: signed (and broadcast, or about to be);
-- mined: a receipt is in; confirmed: buried under enough blocks; failed: reverted or its
-- nonce was taken by another transaction (the reason says which).
CREATE TYPE outbox_status AS ENUM ('queued', 'sent', 'mined', 'confirmed', 'failed');

CREATE TABLE relayer_nonces (
    chain_id   bigint NOT NULL,
    sender     bytea  NOT NULL,
    next_nonce bigint NOT NULL,
    CONSTRAINT relayer_nonces_pkey PRIMARY KEY (chain_id, sender)
);

CREATE TABLE outbox (
    id           bigint        GENERATED ALWAYS AS IDENTITY,
    chain_id     bigint        NOT NULL,
    -- Taken with the row for the relayer's own transactions; consent requests from the API
    -- get the relayer's sender and nonce once the relayer has simulated them.
    sender       bytea,
    nonce        bigint,
    kind         outbox_kind   NOT NULL,
    -- settle: the epoch it settles.
    epoch        bigint,
    -- consent: the EIP-712 digest the user signed; a resubmission finds this row.
    digest       bytea,
    target       bytea         NOT NULL,
    calldata     bytea         NOT NULL,
    -- 0 until simulated.
    gas_limit    bigint        NOT NULL,
    status       outbox_status NOT NULL DEFAULT 'queued',
    mined_tx     bytea,
    mined_block  bigint,
    mined_block_hash bytea,
    -- The mined transaction reverted.
    reverted     boolean,
    error        text,
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_nonce_key UNIQUE (chain_id, sender, nonce),
    CONSTRAINT outbox_kind_fields CHECK (
        CASE kind WHEN 'settle' THEN epoch IS NOT NULL AND digest IS NULL
                  WHEN 'consent' THEN digest IS NOT NULL AND epoch IS NULL
                  ELSE epoch IS NULL AND digest IS NULL END),
    CONSTRAINT outbox_nonce_taken CHECK ((nonce IS NOT NULL AND sender IS NOT NULL) OR status IN ('queued', 'failed')),
    CONSTRAINT outbox_mined CHECK ((status IN ('mined', 'confirmed')) <= (mined_tx IS NOT NULL))
);
-- At most one live transaction per epoch; a failed one may be followed by another.
CREATE UNIQUE INDEX outbox_epoch_key ON outbox (chain_id, epoch) WHERE kind = 'settle' AND status <> 'failed';
CREATE UNIQUE INDEX outbox_digest_key ON outbox (chain_id, digest) WHERE kind = 'consent';
CREATE INDEX outbox_open_idx ON outbox (chain_id, sender, nonce) WHERE status IN ('queued', 'sent', 'mined');

CREATE TABLE outbox_attempts (
    tx_hash      bytea          NOT NULL,
    outbox_id    bigint         NOT NULL,
    raw          bytea          NOT NULL,
    max_fee      numeric(78, 0) NOT NULL,
    priority_fee numeric(78, 0) NOT NULL,
    signed_at    timestamptz    NOT NULL DEFAULT now(),
    broadcast_at timestamptz,
    CONSTRAINT outbox_attempts_pkey PRIMARY KEY (tx_hash),
    CONSTRAINT outbox_attempts_outbox_fkey FOREIGN KEY (outbox_id) REFERENCES outbox (id)
);
CREATE INDEX outbox_attempts_outbox_idx ON outbox_attempts (outbox_id, signed_at);
