-- White-label resellers: agencies that resell the platform under their own brand.
--
-- An agency applies; its contracts move through a workflow whose every change is recorded
-- with who and why. Its branding is served by host name once it has proven its domain with
-- a DNS TXT record. End advertisers join it by its code or its domain, within its monthly
-- quotas. Its markup is moved out of the platform's share of its advertisers' spend through
-- the ledger, at the tier its month's volume has reached.
ALTER TYPE ledger_role ADD VALUE 'reseller';
ALTER TYPE statement_line ADD VALUE 'reseller_markups' AFTER 'commissions';

CREATE TABLE resellers (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid        NOT NULL UNIQUE REFERENCES users (id),
    name            text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- What end advertisers type to join: RES and eight characters.
    code            text        NOT NULL UNIQUE,
    application     text        NOT NULL CHECK (char_length(application) BETWEEN 1 AND 500),
    applied_at      timestamptz NOT NULL DEFAULT now(),
    -- Branding.
    logo_url        text        CHECK (char_length(logo_url) <= 2048),
    primary_colour  text        CHECK (primary_colour ~ '^#[0-9a-f]{6}$'),
    accent_colour   text        CHECK (accent_colour ~ '^#[0-9a-f]{6}$'),
    support_contact text        CHECK (char_length(support_contact) BETWEEN 1 AND 200),
    -- A custom domain, lower case, and the token its TXT record must carry; served by it
    -- only once verified.
    domain          text        UNIQUE CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    domain_token    text,
    domain_verified_at timestamptz,
    CHECK ((domain IS NULL) = (domain_token IS NULL)),
    CHECK (domain_verified_at IS NULL OR domain IS NOT NULL),
    -- Quotas per calendar month (UTC); none: unlimited. Soft ones warn, hard ones refuse.
    end_users_soft  integer     CHECK (end_users_soft > 0),
    end_users_hard  integer     CHECK (end_users_hard > 0),
    api_calls_soft  bigint      CHECK (api_calls_soft > 0),
    api_calls_hard  bigint      CHECK (api_calls_hard > 0)
);

CREATE TYPE reseller_contract_status AS ENUM ('draft', 'pending_approval', 'approved', 'active', 'terminated');

-- An active contract past its end reads as expired; nothing is written for that.
CREATE TABLE reseller_contracts (
    id          uuid                     PRIMARY KEY DEFAULT gen_random_uuid(),
    reseller_id uuid                     NOT NULL REFERENCES resellers (id),
    version     integer                  NOT NULL CHECK (version >= 1),
    starts_at   timestamptz              NOT NULL,
    ends_at     timestamptz              NOT NULL,
    terms       text                     NOT NULL CHECK (char_length(terms) BETWEEN 1 AND 10000),
    status      reseller_contract_status NOT NULL DEFAULT 'draft',
    CHECK (ends_at > starts_at),
    UNIQUE (reseller_id, version)
);
-- At most one live (approved or active) contract per reseller.
CREATE UNIQUE INDEX reseller_contracts_live_idx ON reseller_contracts (reseller_id)
    WHERE status IN ('approved', 'active');

CREATE TABLE reseller_contract_changes (
    id          bigserial                PRIMARY KEY,
    contract_id uuid                     NOT NULL REFERENCES reseller_contracts (id),
    from_status reseller_contract_status,
    to_status   reseller_contract_status NOT NULL,
    changed_by  uuid                     NOT NULL REFERENCES users (id),
    reason      text                     NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    changed_at  timestamptz              NOT NULL DEFAULT now()
);
CREATE INDEX reseller_contract_changes_contract_idx ON reseller_contract_changes (contract_id, id);

-- End advertisers: each joins at most one reseller.
CREATE TABLE reseller_members (
    user_id     uuid        PRIMARY KEY REFERENCES users (id),
    reseller_id uuid        NOT NULL REFERENCES resellers (id),
    via         text        NOT NULL CHECK (via IN ('code', 'domain')),
    joined_at   timestamptz NOT NULL
);
CREATE INDEX reseller_members_reseller_idx ON reseller_members (reseller_id, joined_at);

-- Usage per reseller and calendar month, counted by one conditional upsert each.
CREATE TABLE reseller_usage (
    reseller_id uuid    NOT NULL REFERENCES resellers (id),
    month       date    NOT NULL CHECK (extract(day FROM month) = 1),
    end_users   integer NOT NULL DEFAULT 0 CHECK (end_users >= 0),
    api_calls   bigint  NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    PRIMARY KEY (reseller_id, month)
);

-- Pricing: the platform's fee on a reseller's advertisers' spend, in basis points of the
-- price, by the reseller's billed volume in the month so far; a schedule takes effect on
-- its date. The reseller's markup is the platform's share above that fee.
CREATE TABLE reseller_tiers (
    reseller_id    uuid          NOT NULL REFERENCES resellers (id),
    token          bytea         NOT NULL CHECK (octet_length(token) = 20),
    effective_from date          NOT NULL,
    min_volume     numeric(39,0) NOT NULL CHECK (min_volume >= 0),
    fee_bps        integer       NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    PRIMARY KEY (reseller_id, token, effective_from, min_volume)
);

-- The month's billed volume per reseller and token, as the markup accrual has counted it.
CREATE TABLE reseller_volumes (
    reseller_id uuid          NOT NULL REFERENCES resellers (id),
    token       bytea         NOT NULL CHECK (octet_length(token) = 20),
    month       date          NOT NULL,
    volume      numeric(39,0) NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (reseller_id, token, month)
);

-- One markup per receipt batch, reseller and token: the transfer out of the platform's share.
CREATE TABLE reseller_markups (
    batch_id      bigint        NOT NULL,
    reseller_id   uuid          NOT NULL REFERENCES resellers (id),
    token         bytea         NOT NULL CHECK (octet_length(token) = 20),
    source_posting bigint       NOT NULL REFERENCES ledger_postings (id),
    spend         numeric(39,0) NOT NULL,
    platform_share numeric(39,0) NOT NULL,
    volume_before numeric(39,0) NOT NULL,
    fee_bps       integer       NOT NULL,
    amount        numeric(39,0) NOT NULL CHECK (amount > 0),
    posting_id    bigint        NOT NULL REFERENCES ledger_postings (id),
    accrued_at    timestamptz   NOT NULL,
    PRIMARY KEY (batch_id, reseller_id, token)
);
CREATE INDEX reseller_markups_reseller_idx ON reseller_markups (reseller_id, accrued_at);

-- What adjustments took back of a markup: once per adjustment, batch and reseller.
CREATE TABLE reseller_clawbacks (
    adjustment_id uuid          NOT NULL REFERENCES billing_adjustments (id),
    batch_id      bigint        NOT NULL,
    reseller_id   uuid          NOT NULL REFERENCES resellers (id),
    -- The platform share this adjustment reversed, and what it took back of the markup.
    reversed      numeric(39,0) NOT NULL CHECK (reversed >= 0),
    amount        numeric(39,0) NOT NULL CHECK (amount >= 0),
    posting_id    bigint        REFERENCES ledger_postings (id),
    clawed_at     timestamptz   NOT NULL,
    PRIMARY KEY (adjustment_id, batch_id, reseller_id)
);
CREATE INDEX reseller_clawbacks_markup_idx ON reseller_clawbacks (batch_id, reseller_id);

INSERT INTO program_cursors (name, position) VALUES ('reseller_accrual', 0);
