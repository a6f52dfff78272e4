-- Growth: referral rewards (users bring users) and the affiliate program (partners bring
-- paying advertisers), paid through the same ledger and claim as every other earning; and
-- billing adjustments, which reverse billed receipts found fraudulent later.

-- Accounts an admin disables: they cannot sign in or use their tokens and keys, and their
-- referral codes stop counting.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- A reversed billed receipt refunds its advertiser through the claim.
ALTER TYPE ledger_role ADD VALUE 'advertiser';
-- Granted when an admin approves an affiliate.
ALTER TYPE user_role ADD VALUE 'affiliate';

-- A hold may wait for the spend it came from to be final: not released before an epoch that
-- covers `settled_after` is the chain's current root (settled, past its challenge window).
ALTER TABLE ledger_holds ADD COLUMN settled_after bigint;
ALTER TABLE ledger_holds
    ADD CONSTRAINT ledger_holds_settled_after_fkey FOREIGN KEY (settled_after) REFERENCES ledger_postings (id);

-- Sign-in networks ---------------------------------------------------------------------------
-- Where each user signed in from, as keyed hashes of the truncated address (IPv4 /24,
-- IPv6 /64) under a secret outside the database: what the referral rules compare.
CREATE TABLE sign_in_networks (
    user_id    uuid        NOT NULL,
    network    bytea       NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sign_in_networks_pkey PRIMARY KEY (user_id, network),
    CONSTRAINT sign_in_networks_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sign_in_networks_network_length CHECK (octet_length(network) = 32)
);

-- Referrals --------------------------------------------------------------------------------
-- Codes avoid look-alike characters (no 0, O, 1, I, L, U); they are kept upper case and
-- matched whatever the case they are typed in.
CREATE TABLE referral_codes (
    user_id    uuid        NOT NULL,
    code       text        NOT NULL,
    -- How many sign-ups the code may bring; NULL: no limit.
    use_limit  integer,
    uses       integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT referral_codes_pkey PRIMARY KEY (user_id),
    CONSTRAINT referral_codes_code_key UNIQUE (code),
    CONSTRAINT referral_codes_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT referral_codes_code_format CHECK (code ~ '^[2-9A-HJKMNP-TV-Z]{8}$'),
    CONSTRAINT referral_codes_use_limit CHECK (use_limit > 0),
    CONSTRAINT referral_codes_uses CHECK (uses >= 0 AND (use_limit IS NULL OR uses <= use_limit))
);

CREATE TYPE referral_channel AS ENUM ('code', 'link');

-- Who referred whom: once and for good, at the referee's first sign-in.
CREATE TABLE referrals (
    referee_id  uuid             NOT NULL,
    referrer_id uuid             NOT NULL,
    channel     referral_channel NOT NULL,
    -- The referee's sign-up network (see sign_in_networks); NULL when the request had none.
    network     bytea,
    referred_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT referrals_pkey PRIMARY KEY (referee_id),
    CONSTRAINT referrals_referee_fkey FOREIGN KEY (referee_id) REFERENCES users (id),
    CONSTRAINT referrals_referrer_fkey FOREIGN KEY (referrer_id) REFERENCES users (id),
    CONSTRAINT referrals_not_self CHECK (referee_id <> referrer_id),
    CONSTRAINT referrals_network_length CHECK (octet_length(network) = 32)
);
CREATE INDEX referrals_referrer_idx ON referrals (referrer_id, referred_at);
CREATE INDEX referrals_network_idx ON referrals (network, referred_at) WHERE network IS NOT NULL;

-- The rules, versioned: a new version is a new row, and every assessment names its version.
CREATE TABLE referral_rules (
    version            integer     NOT NULL,
    -- A bonus for every `milestone` qualified referrals.
    milestone          integer     NOT NULL,
    cooldown_secs      bigint      NOT NULL,
    network_window_secs bigint     NOT NULL,
    require_network    boolean     NOT NULL,
    created_by         uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT referral_rules_pkey PRIMARY KEY (version),
    CONSTRAINT referral_rules_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id),
    CONSTRAINT referral_rules_milestone CHECK (milestone BETWEEN 1 AND 1000),
    CONSTRAINT referral_rules_durations CHECK (cooldown_secs >= 0 AND network_window_secs >= 0)
);
-- Per token: what qualifies (billed as an advertiser, earned as a hoster) and the bonus,
-- paid from a program budget in that token.
CREATE TABLE referral_rule_tokens (
    version     integer        NOT NULL,
    token       bytea          NOT NULL,
    min_billed  numeric(78, 0) NOT NULL,
    min_earned  numeric(78, 0) NOT NULL,
    bonus       numeric(78, 0) NOT NULL,
    budget_id   uuid           NOT NULL,
    CONSTRAINT referral_rule_tokens_pkey PRIMARY KEY (version, token),
    CONSTRAINT referral_rule_tokens_version_fkey FOREIGN KEY (version) REFERENCES referral_rules (version),
    CONSTRAINT referral_rule_tokens_budget_fkey FOREIGN KEY (budget_id) REFERENCES escrow_accounts (id),
    CONSTRAINT referral_rule_tokens_token_length CHECK (octet_length(token) = 20),
    CONSTRAINT referral_rule_tokens_amounts CHECK (min_billed > 0 AND min_earned > 0 AND bonus > 0)
);
CREATE TRIGGER referral_rules_append_only BEFORE UPDATE OR DELETE ON referral_rules
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER referral_rule_tokens_append_only BEFORE UPDATE OR DELETE ON referral_rule_tokens
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
-- Version 1: the documented defaults, with no token yet (nothing qualifies until an admin
-- names what does and which budget pays).
INSERT INTO referral_rules (version, milestone, cooldown_secs, network_window_secs, require_network)
VALUES (1, 3, 7 * 86400, 30 * 86400, true);

-- A bonus per referrer, milestone (the k-th block of `milestone` qualified referrals), rule
-- version and token; its posting debits the budget (held while the budget cannot cover it).
CREATE TABLE referral_bonuses (
    referrer_id  uuid           NOT NULL,
    milestone    integer        NOT NULL,
    rule_version integer        NOT NULL,
    token        bytea          NOT NULL,
    -- The qualified referrals it needs: milestone * the rule's block.
    threshold    integer        NOT NULL,
    amount       numeric(78, 0) NOT NULL,
    posting_id   bigint         NOT NULL,
    awarded_at   timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT referral_bonuses_pkey PRIMARY KEY (referrer_id, milestone, rule_version, token),
    CONSTRAINT referral_bonuses_referrer_fkey FOREIGN KEY (referrer_id) REFERENCES users (id),
    CONSTRAINT referral_bonuses_rule_fkey FOREIGN KEY (rule_version) REFERENCES referral_rules (version),
    CONSTRAINT referral_bonuses_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT referral_bonuses_milestone CHECK (milestone > 0 AND threshold > 0)
);
-- A bonus whose referrals stopped qualifying is reversed by a posting, once.
CREATE TABLE referral_bonus_reversals (
    referrer_id  uuid        NOT NULL,
    milestone    integer     NOT NULL,
    rule_version integer     NOT NULL,
    token        bytea       NOT NULL,
    posting_id   bigint      NOT NULL,
    qualified    integer     NOT NULL,
    reversed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT referral_bonus_reversals_pkey PRIMARY KEY (referrer_id, milestone, rule_version, token),
    CONSTRAINT referral_bonus_reversals_bonus_fkey FOREIGN KEY (referrer_id, milestone, rule_version, token)
        REFERENCES referral_bonuses (referrer_id, milestone, rule_version, token),
    CONSTRAINT referral_bonus_reversals_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id)
);
CREATE TRIGGER referral_bonuses_append_only BEFORE UPDATE OR DELETE ON referral_bonuses
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER referral_bonus_reversals_append_only BEFORE UPDATE OR DELETE ON referral_bonus_reversals
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- When each referrer's bonuses were last recomputed: the scheduled job takes the referrers
-- least recently recomputed first, a page at a time.
CREATE TABLE referral_sweeps (
    referrer_id uuid        NOT NULL,
    swept_at    timestamptz NOT NULL,
    CONSTRAINT referral_sweeps_pkey PRIMARY KEY (referrer_id),
    CONSTRAINT referral_sweeps_referrer_fkey FOREIGN KEY (referrer_id) REFERENCES users (id)
);
CREATE INDEX referral_sweeps_swept_idx ON referral_sweeps (swept_at);

-- Affiliates -------------------------------------------------------------------------------
-- pending -> active (approved); active <-> suspended; any of them -> terminated (final).
CREATE TYPE affiliate_status AS ENUM ('pending', 'active', 'suspended', 'terminated');

CREATE TABLE affiliates (
    user_id    uuid             NOT NULL,
    status     affiliate_status NOT NULL DEFAULT 'pending',
    -- Share of the platform's share of attributed spend, in basis points.
    rate_bps   integer          NOT NULL,
    applied_at timestamptz      NOT NULL DEFAULT now(),
    updated_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT affiliates_pkey PRIMARY KEY (user_id),
    CONSTRAINT affiliates_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT affiliates_rate_bounds CHECK (rate_bps BETWEEN 1 AND 5000)
);
CREATE TRIGGER affiliates_updated_at BEFORE UPDATE ON affiliates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every change of an affiliate's status or rate: who, why, and what it became.
CREATE TABLE affiliate_changes (
    id          bigint           GENERATED ALWAYS AS IDENTITY,
    user_id     uuid             NOT NULL,
    from_status affiliate_status,
    to_status   affiliate_status NOT NULL,
    rate_bps    integer          NOT NULL,
    changed_by  uuid             NOT NULL,
    reason      text             NOT NULL,
    changed_at  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT affiliate_changes_pkey PRIMARY KEY (id),
    CONSTRAINT affiliate_changes_affiliate_fkey FOREIGN KEY (user_id) REFERENCES affiliates (user_id),
    CONSTRAINT affiliate_changes_by_fkey FOREIGN KEY (changed_by) REFERENCES users (id),
    CONSTRAINT affiliate_changes_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500)
);
CREATE INDEX affiliate_changes_affiliate_idx ON affiliate_changes (user_id, id);
CREATE TRIGGER affiliate_changes_append_only BEFORE UPDATE OR DELETE ON affiliate_changes
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE affiliate_codes (
    code         text        NOT NULL,
    affiliate_id uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT affiliate_codes_pkey PRIMARY KEY (code),
    CONSTRAINT affiliate_codes_affiliate_fkey FOREIGN KEY (affiliate_id) REFERENCES affiliates (user_id),
    CONSTRAINT affiliate_codes_format CHECK (code ~ '^AFF[2-9A-HJKMNP-TV-Z]{8}$')
);
CREATE INDEX affiliate_codes_affiliate_idx ON affiliate_codes (affiliate_id);

CREATE TYPE attribution_channel AS ENUM ('sign_in', 'campaign');

-- Which affiliate brought an advertiser: once and for good; commissions accrue on spend
-- billed in [attributed_at, ends_at).
CREATE TABLE affiliate_attributions (
    advertiser_id uuid                NOT NULL,
    affiliate_id  uuid                NOT NULL,
    code          text                NOT NULL,
    channel       attribution_channel NOT NULL,
    attributed_at timestamptz         NOT NULL DEFAULT now(),
    ends_at       timestamptz         NOT NULL,
    CONSTRAINT affiliate_attributions_pkey PRIMARY KEY (advertiser_id),
    CONSTRAINT affiliate_attributions_advertiser_fkey FOREIGN KEY (advertiser_id) REFERENCES users (id),
    CONSTRAINT affiliate_attributions_affiliate_fkey FOREIGN KEY (affiliate_id) REFERENCES affiliates (user_id),
    CONSTRAINT affiliate_attributions_code_fkey FOREIGN KEY (code) REFERENCES affiliate_codes (code),
    CONSTRAINT affiliate_attributions_not_self CHECK (advertiser_id <> affiliate_id),
    CONSTRAINT affiliate_attributions_window CHECK (ends_at > attributed_at)
);
CREATE INDEX affiliate_attributions_affiliate_idx ON affiliate_attributions (affiliate_id, attributed_at);

-- Billing adjustments ----------------------------------------------------------------------
-- An admin reverses billed receipts found fraudulent later: each payee's share goes back to
-- the advertiser (claimable like any earning; the escrow stays debited, so every leaf stays
-- backed). A receipt is reversed once.
CREATE TABLE billing_adjustments (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    batch_id    bigint      NOT NULL,
    reason      text        NOT NULL,
    adjusted_by uuid        NOT NULL,
    adjusted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_adjustments_pkey PRIMARY KEY (id),
    CONSTRAINT billing_adjustments_batch_fkey FOREIGN KEY (batch_id) REFERENCES receipt_batches (id),
    CONSTRAINT billing_adjustments_by_fkey FOREIGN KEY (adjusted_by) REFERENCES users (id),
    CONSTRAINT billing_adjustments_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500)
);
CREATE TABLE billing_reversed_receipts (
    batch_id       bigint         NOT NULL,
    position       integer        NOT NULL,
    adjustment_id  uuid           NOT NULL,
    campaign_id    uuid           NOT NULL,
    price          numeric(39, 0) NOT NULL,
    platform_share numeric(39, 0) NOT NULL,
    CONSTRAINT billing_reversed_receipts_pkey PRIMARY KEY (batch_id, position),
    CONSTRAINT billing_reversed_receipts_adjustment_fkey FOREIGN KEY (adjustment_id) REFERENCES billing_adjustments (id)
);
CREATE INDEX billing_reversed_receipts_adjustment_idx ON billing_reversed_receipts (adjustment_id);
CREATE TRIGGER billing_adjustments_append_only BEFORE UPDATE OR DELETE ON billing_adjustments
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER billing_reversed_receipts_append_only BEFORE UPDATE OR DELETE ON billing_reversed_receipts
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Commissions ------------------------------------------------------------------------------
-- Accrual and adjustments find a batch's billed receipts by their billing time: a batch's
-- receipts and its ledger posting are written in one transaction, so their `billed_at` and
-- `posted_at` (both `now()`) are equal, and the BRIN index over `billed_at` finds them
-- without an index of their own on billing's insert path.

-- One per billed batch and affiliate: the rate in force, of the platform's share of the
-- spend of that affiliate's attributed campaigns in the batch, moved to the affiliate by a
-- held transfer. (Per campaign would be one ledger posting per campaign of a batch.)
CREATE TABLE affiliate_commissions (
    batch_id        bigint         NOT NULL,
    affiliate_id    uuid           NOT NULL,
    token           bytea          NOT NULL,
    -- The batch's posting the spend came from.
    source_posting  bigint         NOT NULL,
    spend           numeric(39, 0) NOT NULL,
    platform_share  numeric(39, 0) NOT NULL,
    rate_bps        integer        NOT NULL,
    amount          numeric(39, 0) NOT NULL,
    posting_id      bigint         NOT NULL,
    accrued_at      timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT affiliate_commissions_pkey PRIMARY KEY (batch_id, affiliate_id),
    CONSTRAINT affiliate_commissions_affiliate_fkey FOREIGN KEY (affiliate_id) REFERENCES affiliates (user_id),
    CONSTRAINT affiliate_commissions_source_fkey FOREIGN KEY (source_posting) REFERENCES ledger_postings (id),
    CONSTRAINT affiliate_commissions_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT affiliate_commissions_amount CHECK (amount > 0 AND amount <= platform_share)
);
CREATE INDEX affiliate_commissions_affiliate_idx ON affiliate_commissions (affiliate_id, accrued_at);
-- Which campaigns' spend each commission was earned on: what adjustments are matched by.
CREATE TABLE affiliate_commission_campaigns (
    batch_id       bigint         NOT NULL,
    affiliate_id   uuid           NOT NULL,
    campaign_id    uuid           NOT NULL,
    spend          numeric(39, 0) NOT NULL,
    platform_share numeric(39, 0) NOT NULL,
    CONSTRAINT affiliate_commission_campaigns_pkey PRIMARY KEY (batch_id, campaign_id),
    CONSTRAINT affiliate_commission_campaigns_commission_fkey FOREIGN KEY (batch_id, affiliate_id)
        REFERENCES affiliate_commissions (batch_id, affiliate_id),
    CONSTRAINT affiliate_commission_campaigns_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id)
);
CREATE TRIGGER affiliate_commissions_append_only BEFORE UPDATE OR DELETE ON affiliate_commissions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER affiliate_commission_campaigns_append_only BEFORE UPDATE OR DELETE ON affiliate_commission_campaigns
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- What an adjustment took back of a commission, and `clawed_total`, all taken back so far
-- (each clawback is the change in floor(amount * reversed / platform_share), so rounding
-- never drifts and a whole reversal takes back exactly the whole). `posting_id` took it
-- back: the held commission's reversal, or a transfer back after release (none when the
-- rounding took nothing); `live_posting` is the commission's posting after it: the smaller
-- held commission posted in place of a reversed one, or the same as before (none once
-- nothing is left).
CREATE TABLE affiliate_clawbacks (
    adjustment_id uuid           NOT NULL,
    batch_id      bigint         NOT NULL,
    affiliate_id  uuid           NOT NULL,
    amount        numeric(39, 0) NOT NULL,
    clawed_total  numeric(39, 0) NOT NULL,
    posting_id    bigint,
    live_posting  bigint,
    clawed_at     timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT affiliate_clawbacks_pkey PRIMARY KEY (adjustment_id, batch_id, affiliate_id),
    CONSTRAINT affiliate_clawbacks_commission_fkey FOREIGN KEY (batch_id, affiliate_id)
        REFERENCES affiliate_commissions (batch_id, affiliate_id),
    CONSTRAINT affiliate_clawbacks_adjustment_fkey FOREIGN KEY (adjustment_id) REFERENCES billing_adjustments (id),
    CONSTRAINT affiliate_clawbacks_posting_fkey FOREIGN KEY (posting_id) REFERENCES ledger_postings (id),
    CONSTRAINT affiliate_clawbacks_live_fkey FOREIGN KEY (live_posting) REFERENCES ledger_postings (id)
);
CREATE TRIGGER affiliate_clawbacks_append_only BEFORE UPDATE OR DELETE ON affiliate_clawbacks
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- How far the accrual job has read the ledger's receipt-batch postings.
CREATE TABLE program_cursors (
    name     text   NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    CONSTRAINT program_cursors_pkey PRIMARY KEY (name)
);
INSERT INTO program_cursors (name) VALUES ('affiliate_accrual');
