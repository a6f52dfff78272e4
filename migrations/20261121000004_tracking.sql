-- Tracking: witnessed receipt batches, billing, and the double-entry ledger.

-- One row per batch a hoster node submitted; (hoster, sequence) makes resubmission idempotent.
CREATE TABLE receipt_batches (
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    hoster_node_id    uuid        NOT NULL,
    sequence          bigint      NOT NULL,
    witness_node_id   uuid,
    receipts_hash     bytea       NOT NULL,
    hoster_signature  bytea       NOT NULL,
    witness_signature bytea,
    receipt_count     integer     NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT receipt_batches_pkey PRIMARY KEY (id),
    CONSTRAINT receipt_batches_sequence_key UNIQUE (hoster_node_id, sequence),
    CONSTRAINT receipt_batches_hoster_fkey FOREIGN KEY (hoster_node_id) REFERENCES nodes (id),
    CONSTRAINT receipt_batches_witness_fkey FOREIGN KEY (witness_node_id) REFERENCES nodes (id),
    CONSTRAINT receipt_batches_witness_signed CHECK ((witness_node_id IS NULL) = (witness_signature IS NULL)),
    CONSTRAINT receipt_batches_sequence_positive CHECK (sequence >= 0)
);

-- Billed receipts carry their batch, position, viewer and the split of their price.
--
-- Billing writes tens of thousands of rows a second here, and per-row foreign key checks
-- would cost more than the rest of billing together. The ids come from tickets the server
-- MACed and from the batch it just verified, so they are dropped; (ticket, event), the
-- natural key that makes billing exactly-once, becomes the primary key.
ALTER TABLE billed_events
    DROP CONSTRAINT billed_events_campaign_fkey,
    DROP CONSTRAINT billed_events_ad_fkey,
    DROP CONSTRAINT billed_events_hoster_fkey,
    DROP CONSTRAINT billed_events_witness_fkey,
    DROP CONSTRAINT billed_events_pkey,
    DROP COLUMN id,
    DROP CONSTRAINT billed_events_ticket_event_key,
    ADD CONSTRAINT billed_events_pkey PRIMARY KEY (ticket_id, event),
    ADD COLUMN batch_id       bigint,
    ADD COLUMN position       integer,
    -- SHA-256 of the viewer's pseudonymous id, as in the ticket; frequency caps count by it.
    ADD COLUMN viewer_hash    bytea,
    ADD COLUMN order_ref      text,
    ADD COLUMN hoster_share   numeric(39, 0) NOT NULL DEFAULT 0,
    ADD COLUMN platform_share numeric(39, 0) NOT NULL DEFAULT 0,
    ADD COLUMN witness_share  numeric(39, 0) NOT NULL DEFAULT 0,
    ADD COLUMN viewer_share   numeric(39, 0) NOT NULL DEFAULT 0,
    -- The viewer's wallet when it earned a reward.
    ADD COLUMN viewer_payee   bytea,
    ADD CONSTRAINT billed_events_split_sums CHECK (hoster_share + platform_share + witness_share + viewer_share = price),
    ADD CONSTRAINT billed_events_viewer_paid CHECK ((viewer_share > 0) <= (viewer_payee IS NOT NULL));
CREATE INDEX billed_events_frequency_idx ON billed_events (ad_id, viewer_hash, occurred_at)
    WHERE viewer_hash IS NOT NULL AND event IN ('impression', 'click');

CREATE TYPE refusal_reason AS ENUM (
    'ticket_invalid', 'ticket_expired', 'wrong_hoster', 'viewer_mismatch', 'time_in_future',
    'duplicate', 'click_without_impression', 'not_priced', 'frequency_capped', 'consent_missing',
    'campaign_budget_exhausted', 'brand_budget_reached');

-- Receipts that were not billed, with why: nothing a node reports is silently dropped.
CREATE TABLE refused_receipts (
    batch_id    bigint         NOT NULL,
    position    integer        NOT NULL,
    ticket_id   uuid,
    event       billable_event NOT NULL,
    occurred_at timestamptz    NOT NULL,
    reason      refusal_reason NOT NULL,
    CONSTRAINT refused_receipts_pkey PRIMARY KEY (batch_id, position),
    CONSTRAINT refused_receipts_batch_fkey FOREIGN KEY (batch_id) REFERENCES receipt_batches (id)
);

-- Running totals that budget checks read and update in O(1); the ledger stays the record.
CREATE TABLE campaign_spend (
    campaign_id uuid           NOT NULL,
    billed      numeric(39, 0) NOT NULL DEFAULT 0,
    CONSTRAINT campaign_spend_pkey PRIMARY KEY (campaign_id),
    CONSTRAINT campaign_spend_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE
);

-- Every campaign has its row from the start, so billing only ever updates.
CREATE FUNCTION campaign_spend_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_spend (campaign_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER campaigns_spend_row AFTER INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaign_spend_row();
INSERT INTO campaign_spend (campaign_id) SELECT id FROM campaigns;

-- Billed spend per brand and local day (in the brand's zone when billed).
CREATE TABLE brand_daily_spend (
    brand_id uuid           NOT NULL,
    day      date           NOT NULL,
    spend    numeric(39, 0) NOT NULL DEFAULT 0,
    CONSTRAINT brand_daily_spend_pkey PRIMARY KEY (brand_id, day),
    CONSTRAINT brand_daily_spend_brand_fkey FOREIGN KEY (brand_id) REFERENCES brands (id) ON DELETE CASCADE
);

-- The ledger ---------------------------------------------------------------------------
-- A posting moves money in one token; its entries sum to zero. Campaign entries are
-- negative (spend leaves the campaign's escrow), payee entries positive.

CREATE TYPE posting_source AS ENUM ('receipt_batch', 'referral', 'marketplace', 'adjustment');
CREATE TYPE ledger_role AS ENUM ('campaign', 'hoster', 'witness', 'platform', 'viewer');

CREATE TABLE ledger_postings (
    id        bigint         GENERATED ALWAYS AS IDENTITY,
    token     bytea          NOT NULL,
    source    posting_source NOT NULL,
    -- The source row's id (a receipt batch id, ...).
    source_id text           NOT NULL,
    posted_at timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT ledger_postings_pkey PRIMARY KEY (id),
    CONSTRAINT ledger_postings_source_key UNIQUE (source, source_id, token),
    CONSTRAINT ledger_postings_token_length CHECK (octet_length(token) = 20)
);

CREATE TABLE ledger_entries (
    posting_id  bigint         NOT NULL,
    role        ledger_role    NOT NULL,
    campaign_id uuid,
    payee       bytea,
    amount      numeric(40, 0) NOT NULL,
    CONSTRAINT ledger_entries_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT ledger_entries_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id),
    CONSTRAINT ledger_entries_account CHECK (
        CASE WHEN role = 'campaign' THEN campaign_id IS NOT NULL AND payee IS NULL
             ELSE payee IS NOT NULL AND octet_length(payee) = 20 AND campaign_id IS NULL END),
    CONSTRAINT ledger_entries_nonzero CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_posting_idx ON ledger_entries (posting_id);
CREATE INDEX ledger_entries_payee_idx ON ledger_entries (payee) WHERE payee IS NOT NULL;
CREATE INDEX ledger_entries_campaign_idx ON ledger_entries (campaign_id) WHERE campaign_id IS NOT NULL;

-- A posting whose entries do not sum to zero cannot commit. Deferred, so a posting's
-- entries can be inserted in any order within its transaction.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT sum(amount) FROM ledger_entries WHERE posting_id = NEW.posting_id) <> 0 THEN
        RAISE EXCEPTION 'ledger posting % does not balance', NEW.posting_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: corrections are new postings (source 'adjustment').
CREATE FUNCTION ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only; post an adjustment instead'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Each payee's earnings per token, derived from the entries.
CREATE VIEW payee_balances AS
SELECT e.payee, p.token, sum(e.amount) AS earned
FROM ledger_entries e JOIN ledger_postings p ON p.id = e.posting_id
WHERE e.payee IS NOT NULL
GROUP BY e.payee, p.token;

-- Budgets now read the running totals instead of summing billed events, and can be asked
-- for a few campaigns.
DROP FUNCTION campaign_budgets(bigint);
CREATE FUNCTION campaign_budgets(p_chain_id bigint, p_only uuid[] DEFAULT NULL)
RETURNS TABLE (campaign_id uuid, funded boolean, on_chain_remaining numeric, billed numeric, settled numeric, available numeric)
LANGUAGE sql STABLE AS $$
    SELECT c.id,
           cv.campaign_id IS NOT NULL,
           coalesce(cv.remaining, 0),
           coalesce(s.billed, 0),
           coalesce(cv.debited, 0),
           greatest(coalesce(cv.remaining, 0) - greatest(coalesce(s.billed, 0) - coalesce(cv.debited, 0), 0), 0)
    FROM campaigns c
    JOIN brands br ON br.id = c.brand_id
    JOIN users u ON u.id = br.owner_id
    LEFT JOIN campaigns_view cv
           ON cv.chain_id = p_chain_id AND cv.campaign_id = c.chain_campaign_id
          AND cv.advertiser = u.address AND cv.token = c.token
    LEFT JOIN campaign_spend s ON s.campaign_id = c.id
    WHERE p_only IS NULL OR c.id = ANY (p_only)
$$;
