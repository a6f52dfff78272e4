-- The money core: every escrow account the ledger spends from, of three kinds; holds that
-- keep an entry out of epochs until it is due; and released balances beside the leaves.

-- Escrow accounts --------------------------------------------------------------------------
-- Each is an escrow "campaign" on chain under `chain_escrow_id` (the contract's generic
-- escrow: opened and funded from a wallet, debited by settlement, withdrawn by its opener
-- after end + grace). A campaign's account has the campaign's id and is created with it;
-- its owner and end live on the campaign (they can change with the brand and the schedule).
-- An order is opened by its buyer for `price`, and ends when its refund window does; a
-- program budget is opened and funded by the platform's treasury wallet.
CREATE TYPE escrow_kind AS ENUM ('campaign', 'order', 'program');

CREATE TABLE escrow_accounts (
    id              uuid           NOT NULL DEFAULT gen_random_uuid(),
    kind            escrow_kind    NOT NULL,
    chain_escrow_id bytea          NOT NULL,
    token           bytea          NOT NULL,
    -- Orders and program budgets: the wallet that must open the escrow on chain, and its end.
    owner           bytea,
    ends_at         timestamptz,
    -- Orders: what the buyer must fund.
    price           numeric(78, 0),
    -- Program budgets: what the budget is for, in words.
    name            text,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT escrow_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT escrow_accounts_chain_escrow_id_key UNIQUE (chain_escrow_id),
    CONSTRAINT escrow_accounts_chain_escrow_id_length CHECK (octet_length(chain_escrow_id) = 32),
    CONSTRAINT escrow_accounts_token_length CHECK (octet_length(token) = 20),
    CONSTRAINT escrow_accounts_owner_length CHECK (octet_length(owner) = 20),
    CONSTRAINT escrow_accounts_kind_fields CHECK (
        CASE kind
            WHEN 'campaign' THEN owner IS NULL AND ends_at IS NULL AND price IS NULL AND name IS NULL
            WHEN 'order' THEN owner IS NOT NULL AND ends_at IS NOT NULL AND price > 0 AND name IS NULL
            ELSE owner IS NOT NULL AND ends_at IS NOT NULL AND price IS NULL
                 AND char_length(name) BETWEEN 1 AND 100
        END)
);
CREATE INDEX escrow_accounts_kind_idx ON escrow_accounts (kind, created_at) WHERE kind <> 'campaign';

INSERT INTO escrow_accounts (id, kind, chain_escrow_id, token, created_at)
SELECT id, 'campaign', chain_campaign_id, token, created_at FROM campaigns;

-- A campaign is an escrow account: inserting one creates its account first, so the
-- foreign key below holds and no escrow id is taken twice across kinds.
CREATE FUNCTION campaign_escrow_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO escrow_accounts (id, kind, chain_escrow_id, token)
    VALUES (NEW.id, 'campaign', NEW.chain_campaign_id, NEW.token);
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_escrow_account BEFORE INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaign_escrow_account();
ALTER TABLE campaigns
    ADD CONSTRAINT campaigns_escrow_account_fkey FOREIGN KEY (id) REFERENCES escrow_accounts (id);

-- Program budgets are funded from the treasury in fundings, each sent through the outbox:
-- the first opens the escrow, the others top it up.
CREATE TABLE program_fundings (
    id           uuid           NOT NULL DEFAULT gen_random_uuid(),
    escrow_id    uuid           NOT NULL,
    amount       numeric(78, 0) NOT NULL,
    requested_by uuid           NOT NULL,
    requested_at timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT program_fundings_pkey PRIMARY KEY (id),
    CONSTRAINT program_fundings_escrow_fkey FOREIGN KEY (escrow_id) REFERENCES escrow_accounts (id),
    CONSTRAINT program_fundings_requested_by_fkey FOREIGN KEY (requested_by) REFERENCES users (id),
    CONSTRAINT program_fundings_amount_positive CHECK (amount > 0)
);
CREATE INDEX program_fundings_escrow_idx ON program_fundings (escrow_id, requested_at);

-- Holds ------------------------------------------------------------------------------------
-- A hold keeps some entries of the posting that created it out of epochs until it ends. It
-- ends once, by a posting: released (the held entries move to the released side) or
-- reversed (every entry of the creating posting is undone). Neither table is ever updated.
CREATE TYPE hold_reason AS ENUM (
    'refund_window',   -- an order's refund window
    'commission_hold', -- a commission's hold period
    'spend_final',     -- the spend it came from must be final on chain
    'review',          -- a person must clear it
    'budget_empty',    -- the program budget it is paid from cannot cover it yet
    'recovery'         -- the payer it was moved from owes what its leaf already paid
);
CREATE TYPE hold_outcome AS ENUM ('released', 'reversed');

CREATE TABLE ledger_holds (
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    posting_id bigint      NOT NULL,
    reason     hold_reason NOT NULL,
    -- Not released before this time.
    until      timestamptz,
    -- What it waits for, in words, for the payee's statement.
    note       text        NOT NULL,
    -- Recovery: the payee whose debt must be repaid first.
    debtor     bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_holds_pkey PRIMARY KEY (id),
    CONSTRAINT ledger_holds_posting_key UNIQUE (posting_id),
    CONSTRAINT ledger_holds_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT ledger_holds_note_length CHECK (char_length(note) BETWEEN 1 AND 500),
    CONSTRAINT ledger_holds_debtor CHECK ((reason = 'recovery') = (debtor IS NOT NULL) AND octet_length(debtor) = 20)
);

CREATE TABLE ledger_hold_ends (
    hold_id    bigint       NOT NULL,
    outcome    hold_outcome NOT NULL,
    posting_id bigint       NOT NULL,
    -- Who ended it (a user), or none for a job.
    ended_by   uuid,
    reason     text         NOT NULL,
    ended_at   timestamptz  NOT NULL DEFAULT now(),
    -- A hold ends once: a second release, or a release after a reversal, is refused here.
    CONSTRAINT ledger_hold_ends_pkey PRIMARY KEY (hold_id),
    CONSTRAINT ledger_hold_ends_hold_fkey FOREIGN KEY (hold_id) REFERENCES ledger_holds (id),
    CONSTRAINT ledger_hold_ends_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT ledger_hold_ends_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500)
);

CREATE TRIGGER ledger_holds_append_only BEFORE UPDATE OR DELETE ON ledger_holds
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_hold_ends_append_only BEFORE UPDATE OR DELETE ON ledger_hold_ends
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- The ledger names escrow accounts ---------------------------------------------------------
ALTER TYPE ledger_role RENAME VALUE 'campaign' TO 'escrow';
ALTER TYPE ledger_role ADD VALUE 'seller';
ALTER TYPE ledger_role ADD VALUE 'referrer';
ALTER TYPE ledger_role ADD VALUE 'affiliate';
ALTER TYPE posting_source ADD VALUE 'order_sale';
ALTER TYPE posting_source ADD VALUE 'program';
ALTER TYPE posting_source ADD VALUE 'transfer';
ALTER TYPE posting_source ADD VALUE 'clawback';
ALTER TYPE posting_source ADD VALUE 'hold';

DROP VIEW payee_balances;
ALTER TABLE ledger_entries RENAME COLUMN campaign_id TO escrow_id;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_campaign_fkey;
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_escrow_fkey FOREIGN KEY (escrow_id) REFERENCES escrow_accounts (id);
ALTER INDEX ledger_entries_campaign_idx RENAME TO ledger_entries_escrow_idx;
-- Payees' balances are summed over the postings after an epoch's watermark.
DROP INDEX ledger_entries_payee_idx;
CREATE INDEX ledger_entries_payee_idx ON ledger_entries (payee, posting_id) WHERE payee IS NOT NULL;
-- A held entry names its hold; the rest are released.
ALTER TABLE ledger_entries ADD COLUMN hold_id bigint;
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_hold_fkey FOREIGN KEY (hold_id) REFERENCES ledger_holds (id);
CREATE INDEX ledger_entries_hold_idx ON ledger_entries (hold_id) WHERE hold_id IS NOT NULL;

-- Per payee and token: what is released (what payout trees use) and what is held.
CREATE VIEW payee_balances AS
SELECT e.payee, p.token,
       coalesce(sum(e.amount) FILTER (WHERE e.hold_id IS NULL), 0) AS released,
       coalesce(sum(e.amount) FILTER (WHERE e.hold_id IS NOT NULL), 0) AS held
FROM ledger_entries e JOIN ledger_postings p ON p.id = e.posting_id
WHERE e.payee IS NOT NULL
GROUP BY e.payee, p.token;

-- Settlement debits name escrow accounts ---------------------------------------------------
ALTER TABLE settlement_debits RENAME COLUMN campaign_id TO escrow_id;
ALTER TABLE settlement_debits RENAME COLUMN chain_campaign_id TO chain_escrow_id;
ALTER TABLE settlement_debits
    ADD CONSTRAINT settlement_debits_escrow_fkey FOREIGN KEY (escrow_id) REFERENCES escrow_accounts (id);

-- A leaf is max(previous leaf, released balance): `balance` is the released balance as of
-- the epoch, so what a payee owes (cumulative - balance) carries into the next build.
ALTER TABLE payout_leaves ADD COLUMN balance numeric(78, 0);
UPDATE payout_leaves SET balance = cumulative;
ALTER TABLE payout_leaves ALTER COLUMN balance SET NOT NULL;
ALTER TABLE payout_leaves ADD CONSTRAINT payout_leaves_balance_covered CHECK (balance <= cumulative);
