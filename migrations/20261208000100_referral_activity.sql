-- What referees billed and earned, folded from the ledger by the programs role so that a
-- referrer's snapshot reads a few narrow rows per referee instead of joining each referee's
-- whole ledger history through brands, campaigns and postings.
--
-- One row per move: a receipt batch's debit of a referee's campaigns ('billed'), the price
-- of those receipts reversed later by an adjustment (a negative 'billed'), a referee's hoster
-- credits or what an adjustment took back ('earned'). `seq` is the ledger posting the move
-- came from (an adjustment's first posting for its reversed receipts), and moves are folded
-- in that order, so `total` is the running total after the move and `high` the highest
-- running total so far: `high` never falls, so the first move whose `high` reaches a rule is
-- when the referee first qualified, and one index probe finds it.
CREATE TYPE referral_activity_kind AS ENUM ('billed', 'earned');

CREATE TABLE referral_activity (
    referee_id uuid                   NOT NULL,
    token      bytea                  NOT NULL,
    kind       referral_activity_kind NOT NULL,
    seq        bigint                 NOT NULL,
    at         timestamptz            NOT NULL,
    amount     numeric(40, 0)         NOT NULL,
    total      numeric(40, 0)         NOT NULL,
    high       numeric(40, 0)         NOT NULL,
    CONSTRAINT referral_activity_pkey PRIMARY KEY (referee_id, token, kind, seq),
    CONSTRAINT referral_activity_referee_fkey FOREIGN KEY (referee_id) REFERENCES referrals (referee_id),
    CONSTRAINT referral_activity_high CHECK (high >= total)
);
-- With `at` included, the probe for a first crossing reads the index alone.
CREATE INDEX referral_activity_high_idx ON referral_activity (referee_id, token, kind, high, seq) INCLUDE (at);
CREATE TRIGGER referral_activity_append_only BEFORE UPDATE OR DELETE ON referral_activity
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Each referee's running total per token and kind after its latest move, and the latest
-- time of any of its moves, updated with every fold: the snapshot joins these (one per
-- active referee) and probes the moves only where a rule was ever reached, or for a time
-- before the latest move.
CREATE TABLE referral_activity_totals (
    referee_id uuid                   NOT NULL,
    token      bytea                  NOT NULL,
    kind       referral_activity_kind NOT NULL,
    seq        bigint                 NOT NULL,
    latest_at  timestamptz            NOT NULL,
    total      numeric(40, 0)         NOT NULL,
    high       numeric(40, 0)         NOT NULL,
    CONSTRAINT referral_activity_totals_pkey PRIMARY KEY (referee_id, token, kind)
);

INSERT INTO program_cursors (name) VALUES ('referral_activity');
