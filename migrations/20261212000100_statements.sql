-- Earnings statements: what each payee earned, line by line, per calendar period in the zone
-- it chooses, and the platform's own statement. The ledger stays the truth; the roller
-- (src/statements/roller.rs) follows it by posting id and adds each posting's entries at
-- three grains: quarter hours (every zone's offset is a whole number of quarter hours, so a
-- local period starts and ends on one), UTC days and UTC months. A statement reads its
-- period's whole UTC days and the quarter hours at its two edges, and its opening balance
-- from the months, days and quarter hours before it: a few hundred rows whatever the
-- payee's volume. Billing pays nothing for this.
CREATE TYPE statement_line AS ENUM (
    'ad_revenue',        -- a hoster's share of billed events, per node
    'witness_fees',      -- a witness's share, per node
    'viewer_rewards',    -- a viewer's share
    'referral_bonuses',  -- referral bonuses from the referral program's budget
    'program_rewards',   -- other payouts from a program budget (prizes, credits)
    'commissions',       -- an affiliate's commissions, moved out of the platform's share
    'marketplace_sales', -- a seller's share of its sales
    'refunds',           -- what a buyer or an advertiser got back
    'platform_fees',     -- the platform's share of spend and sales
    'commissions_paid',  -- what the platform moved to affiliates and resellers
    'program_spend',     -- what program budgets paid out (the platform's cost; kept under the zero address)
    'adjustments'        -- clawbacks, billing adjustments and reversed holds
);

-- Ad revenue is shown per node and placement: a billed event keeps the placement its ticket
-- was decided for (none for tickets issued before tickets named it), and the roller sums a
-- batch's hoster shares by placement. Batch ids grow with the table, so a BRIN index finds a
-- batch's rows for the cost of a few bytes per thousand pages, not a B-tree entry per row.
ALTER TABLE billed_events ADD COLUMN placement_id uuid;
CREATE INDEX billed_events_batch_brin ON billed_events USING brin (batch_id);

CREATE TABLE statement_buckets (
    -- The payee; the zero address for program budgets' spend.
    payee  bytea          NOT NULL CHECK (octet_length(payee) = 20),
    -- The quarter hour (UTC) its postings were booked in.
    bucket timestamptz    NOT NULL,
    token  bytea          NOT NULL CHECK (octet_length(token) = 20),
    line   statement_line NOT NULL,
    -- The node of ad revenue and witness fees, the placement of ad revenue; the nil uuid
    -- where there is none.
    node      uuid           NOT NULL,
    placement uuid           NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    amount    numeric(40, 0) NOT NULL,
    -- A period's buckets of one payee are one index range.
    PRIMARY KEY (payee, bucket, token, line, node, placement)
);

CREATE TABLE statement_days (
    payee  bytea          NOT NULL CHECK (octet_length(payee) = 20),
    -- A UTC day.
    day    date           NOT NULL,
    token  bytea          NOT NULL CHECK (octet_length(token) = 20),
    line      statement_line NOT NULL,
    node      uuid           NOT NULL,
    placement uuid           NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    amount    numeric(40, 0) NOT NULL,
    PRIMARY KEY (payee, day, token, line, node, placement)
);

CREATE TABLE statement_months (
    payee  bytea          NOT NULL CHECK (octet_length(payee) = 20),
    token  bytea          NOT NULL CHECK (octet_length(token) = 20),
    -- The first day of a UTC month.
    month  date           NOT NULL,
    amount numeric(40, 0) NOT NULL,
    PRIMARY KEY (payee, month, token)
);

-- How far the roller got: every posting up to `rolled_through` is in the buckets, and no
-- posting can still be booked before `sealed_before`, so a period that ended by then is
-- closed. A posting found booked before it anyway is counted at it: in the next period, as
-- a correction.
CREATE TABLE statement_progress (
    singleton      boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_through bigint      NOT NULL,
    sealed_before  timestamptz NOT NULL
);
INSERT INTO statement_progress VALUES (true, 0, '1970-01-01T00:00:00Z');

-- Closed periods' statements, frozen the first time they are read: the exact JSON served
-- and its keccak256. Never updated (corrections go into a later period).
CREATE TABLE statements (
    -- The payee; the zero address for the platform's statement.
    payee     bytea              NOT NULL CHECK (octet_length(payee) = 20),
    zone      text               NOT NULL,
    period    leaderboard_period NOT NULL CHECK (period <> 'all'),
    starts_on date               NOT NULL,
    body      text               NOT NULL,
    hash      bytea              NOT NULL CHECK (octet_length(hash) = 32),
    frozen_at timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (payee, zone, period, starts_on)
);
CREATE FUNCTION statements_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed period''s statement is frozen; corrections go into a later period'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER statements_frozen BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION statements_frozen();

-- A payee's open holds, without reading every entry it ever earned.
CREATE INDEX ledger_entries_payee_held_idx ON ledger_entries (payee, posting_id)
    WHERE payee IS NOT NULL AND hold_id IS NOT NULL;
