-- Promotions: codes admins create and advertisers redeem on one of their campaigns.
--
-- An ad credit is a debit of a program budget: the treasury wallet funds the campaign's
-- escrow on chain (through the outbox) and is repaid from the budget through the claim;
-- the repayment is held until the funding is confirmed and reversed if it fails. A fee
-- discount or a free trial waives part of the platform's fee on the redeemer's campaigns,
-- which billing applies as it prices each receipt.
ALTER TYPE ledger_role ADD VALUE 'treasury';
ALTER TYPE hold_reason ADD VALUE 'credit_pending';

CREATE TYPE promo_offer AS ENUM ('ad_credit', 'fee_discount', 'free_trial');

CREATE TABLE promotions (
    id                uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Upper case; matched whatever the case it is typed in.
    code              text          NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9]$'),
    name              text          NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    offer             promo_offer   NOT NULL,
    -- The token a redeemed campaign must pay in: an ad credit's budget's, or the one its
    -- minimum budget is counted in. None: any token.
    token             bytea         CHECK (octet_length(token) = 20),
    budget_id         uuid          REFERENCES escrow_accounts (id),
    credit            numeric(39,0) CHECK (credit > 0),
    discount_bps      integer       CHECK (discount_bps BETWEEN 1 AND 10000),
    discount_days     integer       CHECK (discount_days BETWEEN 1 AND 3650),
    trial_impressions integer       CHECK (trial_impressions BETWEEN 1 AND 100000000),
    CHECK (CASE offer
        WHEN 'ad_credit' THEN budget_id IS NOT NULL AND credit IS NOT NULL AND token IS NOT NULL
                              AND discount_bps IS NULL AND discount_days IS NULL AND trial_impressions IS NULL
        WHEN 'fee_discount' THEN budget_id IS NULL AND credit IS NULL
                              AND discount_bps IS NOT NULL AND discount_days IS NOT NULL AND trial_impressions IS NULL
        ELSE budget_id IS NULL AND credit IS NULL
             AND discount_bps IS NULL AND discount_days IS NULL AND trial_impressions IS NOT NULL
    END),
    max_redemptions   integer       CHECK (max_redemptions > 0),
    per_user          integer       NOT NULL DEFAULT 1 CHECK (per_user BETWEEN 1 AND 100),
    first_time_only   boolean       NOT NULL DEFAULT false,
    -- What the advertiser itself must have funded the campaign with, in `token`.
    min_budget        numeric(39,0) CHECK (min_budget > 0),
    CHECK (min_budget IS NULL OR token IS NOT NULL),
    starts_at         timestamptz   NOT NULL,
    ends_at           timestamptz   NOT NULL,
    CHECK (ends_at > starts_at),
    -- None while it is a draft.
    published_at      timestamptz,
    paused            boolean       NOT NULL DEFAULT false,
    -- The cap is this one conditional counter.
    redemptions       integer       NOT NULL DEFAULT 0
                      CHECK (redemptions >= 0 AND (max_redemptions IS NULL OR redemptions <= max_redemptions)),
    created_by        uuid          NOT NULL REFERENCES users (id),
    created_at        timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE promo_redemptions (
    id                uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    promotion_id      uuid          NOT NULL REFERENCES promotions (id),
    user_id           uuid          NOT NULL REFERENCES users (id),
    -- The user's first, second, ... redemption of the promotion: the unique row that makes
    -- the per-user limit hold under concurrency.
    ordinal           integer       NOT NULL CHECK (ordinal >= 1),
    campaign_id       uuid          NOT NULL REFERENCES campaigns (id),
    offer             promo_offer   NOT NULL,
    redeemed_at       timestamptz   NOT NULL,
    -- What it gives, fixed when redeemed.
    credit            numeric(39,0) CHECK (credit > 0),
    -- The credit's debit of the budget, held until the campaign's funding is confirmed.
    posting_id        bigint        REFERENCES ledger_postings (id),
    discount_bps      integer       CHECK (discount_bps BETWEEN 1 AND 10000),
    discount_until    timestamptz,
    trial_impressions integer       CHECK (trial_impressions > 0),
    trial_used        integer       NOT NULL DEFAULT 0 CHECK (trial_used >= 0 AND trial_used <= coalesce(trial_impressions, 0)),
    CHECK ((offer = 'ad_credit') = (credit IS NOT NULL AND posting_id IS NOT NULL)),
    CHECK ((offer = 'fee_discount') = (discount_bps IS NOT NULL AND discount_until IS NOT NULL)),
    CHECK ((offer = 'free_trial') = (trial_impressions IS NOT NULL)),
    UNIQUE (promotion_id, user_id, ordinal)
);
-- What billing looks up for each batch's advertisers: their waivers.
CREATE INDEX promo_redemptions_waivers_idx ON promo_redemptions (user_id) WHERE offer <> 'ad_credit';
CREATE INDEX promo_redemptions_promotion_idx ON promo_redemptions (promotion_id, redeemed_at);

-- What billing waived, per batch and redemption: the trial's impressions and the fee
-- the advertiser did not pay.
CREATE TABLE promo_waivers (
    batch_id      bigint        NOT NULL REFERENCES receipt_batches (id),
    redemption_id uuid          NOT NULL REFERENCES promo_redemptions (id),
    token         bytea         NOT NULL CHECK (octet_length(token) = 20),
    events        integer       NOT NULL CHECK (events > 0),
    impressions   integer       NOT NULL CHECK (impressions >= 0),
    waived        numeric(39,0) NOT NULL CHECK (waived >= 0),
    PRIMARY KEY (batch_id, redemption_id, token)
);
CREATE INDEX promo_waivers_redemption_idx ON promo_waivers (redemption_id);

-- The funnel's own events, append only: a visit of the promotion's link, a redemption.
CREATE TYPE promo_event_kind AS ENUM ('visit', 'redemption');
CREATE TABLE promo_events (
    id           bigserial        PRIMARY KEY,
    promotion_id uuid             NOT NULL REFERENCES promotions (id),
    kind         promo_event_kind NOT NULL,
    at           timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX promo_events_promotion_idx ON promo_events (promotion_id, kind);

CREATE FUNCTION promo_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'promo_events is append only';
END $$;
CREATE TRIGGER promo_events_append_only BEFORE UPDATE OR DELETE ON promo_events
    FOR EACH ROW EXECUTE FUNCTION promo_events_append_only();
