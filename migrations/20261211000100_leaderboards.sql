-- Leaderboards: integer scores per subject (a wallet) and period, kept incrementally by
-- billing and the programs in the transaction that earns them, and attributed to the
-- period of the time they were booked, so a period that has ended never changes again.
CREATE TYPE leaderboard_category AS ENUM (
    'hoster_earnings', 'impressions_served', 'witness_work',
    'advertiser_spend', 'qualified_referrals', 'seller_sales'
);
CREATE TYPE leaderboard_period AS ENUM ('day', 'week', 'month', 'all');

-- One board per category, zone, token and period: its bounds and, once it has ended and
-- been frozen, the hash of its final ranking.
CREATE TABLE leaderboard_boards (
    category leaderboard_category NOT NULL,
    -- The IANA zone its days, ISO weeks and months are counted in.
    zone text NOT NULL,
    -- The token of a money category; 20 zero bytes for counts.
    token bytea NOT NULL CHECK (octet_length(token) = 20),
    period leaderboard_period NOT NULL,
    -- The period's first local day (1970-01-01 for all time).
    starts_on date NOT NULL,
    -- When it ends; never for all time.
    ends_at timestamptz,
    frozen_at timestamptz,
    -- keccak256 of (subject || uint256 score) in rank order, and how many entries.
    frozen_hash bytea CHECK (octet_length(frozen_hash) = 32),
    frozen_entries bigint,
    PRIMARY KEY (category, zone, token, period, starts_on),
    CHECK ((period = 'all') = (ends_at IS NULL)),
    CHECK ((frozen_at IS NULL) = (frozen_hash IS NULL) AND (frozen_at IS NULL) = (frozen_entries IS NULL))
);
-- The freezer's work: ended boards not frozen yet.
CREATE INDEX leaderboard_boards_to_freeze ON leaderboard_boards (ends_at) WHERE frozen_at IS NULL AND ends_at IS NOT NULL;

CREATE TABLE leaderboard_scores (
    category leaderboard_category NOT NULL,
    zone text NOT NULL,
    token bytea NOT NULL,
    period leaderboard_period NOT NULL,
    starts_on date NOT NULL,
    subject bytea NOT NULL CHECK (octet_length(subject) = 20),
    score numeric(40, 0) NOT NULL,
    -- Its board is inserted by the same statement (no foreign key: billing pays for every
    -- check, and nothing deletes a board).
    PRIMARY KEY (category, zone, token, period, starts_on, subject)
);

-- The zones boards are kept in, declared by the API's configuration at start
-- (ADESCROW_LEADERBOARD_ZONES) and read by every process that books a score.
CREATE TABLE leaderboard_zones (
    zone text PRIMARY KEY
);
INSERT INTO leaderboard_zones VALUES ('UTC');

-- How many of a referrer's referrals the qualified-referrals boards have counted: the most
-- that were ever qualified at once, so a referral counts when it first qualifies and a
-- referral that is disqualified and qualifies again is not counted twice.
CREATE TABLE leaderboard_referral_marks (
    referrer_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    counted bigint NOT NULL CHECK (counted >= 0)
);
