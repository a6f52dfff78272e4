-- Badges: tiers of a catalog (src/badges/mod.rs) awarded from authoritative state by the
-- badge job, unique per user, badge and tier; revoked with a reason when their basis falls
-- below the tier again, and awarded again if it comes back. Every award and revocation is
-- logged once.
CREATE TYPE badge AS ENUM ('serving', 'witnessing', 'spend', 'referrals', 'sales', 'consent', 'rewards');
CREATE TYPE badge_tier AS ENUM ('bronze', 'silver', 'gold', 'platinum');
CREATE TYPE badge_event_kind AS ENUM ('awarded', 'revoked');

-- Each user's measure per badge as of the job's last run (what tiers are judged on).
CREATE TABLE badge_progress (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    badge       badge       NOT NULL,
    value       bigint      NOT NULL CHECK (value >= 0),
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, badge)
);

CREATE TABLE badge_awards (
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    badge          badge       NOT NULL,
    tier           badge_tier  NOT NULL,
    -- The measure when it was (last) awarded, and the catalog's version then.
    basis          bigint      NOT NULL,
    rule_version   integer     NOT NULL,
    awarded_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text,
    PRIMARY KEY (user_id, badge, tier),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);

CREATE TABLE badge_events (
    id      bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid             NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    badge   badge            NOT NULL,
    tier    badge_tier       NOT NULL,
    kind    badge_event_kind NOT NULL,
    basis   bigint           NOT NULL,
    reason  text,
    at      timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX badge_events_user_idx ON badge_events (user_id, id);
