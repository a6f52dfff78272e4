-- Prizes for the top N of a leaderboard's period, paid from a program budget through the
-- ledger once the period's board is frozen: one posting per board, whose source id is the
-- board's key, so it is paid once.
ALTER TYPE ledger_role ADD VALUE 'winner';

CREATE TABLE leaderboard_prizes (
    category   leaderboard_category NOT NULL,
    zone       text                 NOT NULL,
    token      bytea                NOT NULL,
    period     leaderboard_period   NOT NULL CHECK (period <> 'all'),
    starts_on  date                 NOT NULL,
    -- When the period ends: a board nobody scored on has no row to be frozen, and its prize
    -- is settled (paying nobody) once this is past.
    ends_at    timestamptz          NOT NULL,
    -- The program budget that pays, in its own token.
    budget_id  uuid                 NOT NULL REFERENCES escrow_accounts (id),
    -- Base units for the first, second, ... entry of the frozen ranking.
    amounts    numeric(78, 0)[]     NOT NULL CHECK (cardinality(amounts) BETWEEN 1 AND 100),
    created_by uuid                 NOT NULL REFERENCES users (id),
    created_at timestamptz          NOT NULL DEFAULT now(),
    -- Once the board was frozen: when it was paid, and the posting that paid it (none when
    -- nobody had scored).
    paid_at    timestamptz,
    posting_id bigint               REFERENCES ledger_postings (id),
    CHECK (posting_id IS NULL OR paid_at IS NOT NULL),
    PRIMARY KEY (category, zone, token, period, starts_on)
);
CREATE INDEX leaderboard_prizes_unpaid_idx ON leaderboard_prizes (starts_on) WHERE paid_at IS NULL;
