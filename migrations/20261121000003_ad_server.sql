-- The ad server: brands, campaigns, ad sets, ads, placements, prices, and the read side of
-- what was served and billed. Amounts are numeric(39, 0) token base units: anything up to
-- 2^128 - 1 fits, and the API refuses more.

CREATE TYPE billable_event AS ENUM ('impression', 'click', 'view', 'acquisition');

-- Default unit prices per token and event, set by admins. An ad's own price overrides them.
-- Impressions are priced per impression here; the API speaks CPM (per thousand).
CREATE TABLE default_prices (
    token      bytea          NOT NULL,
    event      billable_event NOT NULL,
    price      numeric(39, 0) NOT NULL,
    updated_by uuid,
    updated_at timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT default_prices_pkey PRIMARY KEY (token, event),
    CONSTRAINT default_prices_token_length CHECK (octet_length(token) = 20),
    CONSTRAINT default_prices_price_positive CHECK (price > 0),
    CONSTRAINT default_prices_updated_by_fkey FOREIGN KEY (updated_by) REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE brands (
    id             uuid           NOT NULL DEFAULT gen_random_uuid(),
    owner_id       uuid           NOT NULL,
    name           text           NOT NULL,
    daily_budget   numeric(39, 0) NOT NULL,
    monthly_budget numeric(39, 0) NOT NULL,
    -- An IANA zone name; budgets reset and dayparting counts at this zone's midnight.
    time_zone      text           NOT NULL,
    active         boolean        NOT NULL DEFAULT true,
    created_at     timestamptz    NOT NULL DEFAULT now(),
    updated_at     timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT brands_pkey PRIMARY KEY (id),
    CONSTRAINT brands_owner_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT brands_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT brands_budgets_positive CHECK (daily_budget > 0 AND monthly_budget > 0)
);
CREATE INDEX brands_owner_idx ON brands (owner_id);
CREATE TRIGGER brands_updated_at BEFORE UPDATE ON brands
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TYPE campaign_status AS ENUM ('draft', 'scheduled', 'running', 'paused', 'budget_reached', 'completed');

CREATE TABLE campaigns (
    id                       uuid            NOT NULL DEFAULT gen_random_uuid(),
    brand_id                 uuid            NOT NULL,
    name                     text            NOT NULL,
    token                    bytea           NOT NULL,
    -- The id this campaign has in the escrow contract.
    chain_campaign_id        bytea           NOT NULL,
    starts_at                timestamptz     NOT NULL,
    ends_at                  timestamptz     NOT NULL,
    -- Dayparting in the brand's zone: [start, end) hours; end < start runs past midnight.
    daypart_start_hour       smallint,
    daypart_end_hour         smallint,
    target_regions           text[]          NOT NULL DEFAULT '{}',
    target_communities       text[]          NOT NULL DEFAULT '{}',
    target_user_types        text[]          NOT NULL DEFAULT '{}',
    required_consent_scope   bytea,
    impression_cap_per_hour  integer         NOT NULL DEFAULT 3,
    click_cap_per_hour       integer         NOT NULL DEFAULT 1,
    priority                 integer         NOT NULL DEFAULT 0,
    status                   campaign_status NOT NULL DEFAULT 'draft',
    created_at               timestamptz     NOT NULL DEFAULT now(),
    updated_at               timestamptz     NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_pkey PRIMARY KEY (id),
    CONSTRAINT campaigns_brand_fkey FOREIGN KEY (brand_id) REFERENCES brands (id) ON DELETE CASCADE,
    CONSTRAINT campaigns_chain_campaign_id_key UNIQUE (chain_campaign_id),
    CONSTRAINT campaigns_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT campaigns_token_length CHECK (octet_length(token) = 20),
    CONSTRAINT campaigns_chain_campaign_id_length CHECK (octet_length(chain_campaign_id) = 32),
    CONSTRAINT campaigns_dates CHECK (ends_at > starts_at),
    CONSTRAINT campaigns_daypart CHECK (
        (daypart_start_hour IS NULL) = (daypart_end_hour IS NULL)
        AND daypart_start_hour BETWEEN 0 AND 23
        AND daypart_end_hour BETWEEN 0 AND 23
        AND daypart_start_hour <> daypart_end_hour),
    CONSTRAINT campaigns_consent_scope_length CHECK (octet_length(required_consent_scope) = 32),
    CONSTRAINT campaigns_caps_positive CHECK (impression_cap_per_hour > 0 AND click_cap_per_hour > 0),
    CONSTRAINT campaigns_priority_range CHECK (priority BETWEEN 0 AND 100)
);
CREATE INDEX campaigns_brand_idx ON campaigns (brand_id);
CREATE INDEX campaigns_status_idx ON campaigns (status) WHERE status <> 'completed';
CREATE TRIGGER campaigns_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TYPE status_cause AS ENUM ('user', 'scheduler', 'budget');

-- Every status change of every campaign: who (actor, when a user), when, and why.
CREATE TABLE campaign_status_changes (
    id          bigint          GENERATED ALWAYS AS IDENTITY,
    campaign_id uuid            NOT NULL,
    from_status campaign_status,
    to_status   campaign_status NOT NULL,
    cause       status_cause    NOT NULL,
    actor_id    uuid,
    reason      text            NOT NULL,
    changed_at  timestamptz     NOT NULL,
    CONSTRAINT campaign_status_changes_pkey PRIMARY KEY (id),
    CONSTRAINT campaign_status_changes_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE,
    CONSTRAINT campaign_status_changes_actor_fkey FOREIGN KEY (actor_id) REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX campaign_status_changes_campaign_idx ON campaign_status_changes (campaign_id, id);

CREATE TABLE ad_sets (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    campaign_id uuid        NOT NULL,
    name        text        NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ad_sets_pkey PRIMARY KEY (id),
    CONSTRAINT ad_sets_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id) ON DELETE CASCADE,
    CONSTRAINT ad_sets_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);
CREATE INDEX ad_sets_campaign_idx ON ad_sets (campaign_id);
CREATE TRIGGER ad_sets_updated_at BEFORE UPDATE ON ad_sets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TYPE creative_kind AS ENUM ('image', 'video', 'text');

CREATE TABLE ads (
    id                uuid           NOT NULL DEFAULT gen_random_uuid(),
    ad_set_id         uuid           NOT NULL,
    name              text           NOT NULL,
    active            boolean        NOT NULL DEFAULT true,
    kind              creative_kind  NOT NULL,
    title             text           NOT NULL,
    body              text           NOT NULL DEFAULT '',
    media_url         text,
    click_url         text           NOT NULL,
    -- Own unit prices; NULL takes the default for the campaign's token.
    price_impression  numeric(39, 0),
    price_click       numeric(39, 0),
    price_view        numeric(39, 0),
    price_acquisition numeric(39, 0),
    created_at        timestamptz    NOT NULL DEFAULT now(),
    updated_at        timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT ads_pkey PRIMARY KEY (id),
    CONSTRAINT ads_ad_set_fkey FOREIGN KEY (ad_set_id) REFERENCES ad_sets (id) ON DELETE CASCADE,
    CONSTRAINT ads_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT ads_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT ads_body_length CHECK (char_length(body) <= 2000),
    CONSTRAINT ads_prices_positive CHECK (
        price_impression > 0 AND price_click > 0 AND price_view > 0 AND price_acquisition > 0)
);
CREATE INDEX ads_ad_set_idx ON ads (ad_set_id);
CREATE TRIGGER ads_updated_at BEFORE UPDATE ON ads
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE placements (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    slug        text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    max_ads     integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT placements_pkey PRIMARY KEY (id),
    CONSTRAINT placements_slug_key UNIQUE (slug),
    CONSTRAINT placements_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 64),
    CONSTRAINT placements_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT placements_max_ads_range CHECK (max_ads BETWEEN 1 AND 10)
);
CREATE TRIGGER placements_updated_at BEFORE UPDATE ON placements
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO placements (slug, name, description, max_ads) VALUES
    ('feed-top-banner', 'Feed top banner', 'A banner above the first post of a feed.', 1),
    ('sidebar', 'Sidebar', 'A column of ads beside the content.', 3),
    ('region-page', 'Region page', 'Ads on the landing page of a region.', 2),
    ('post-interstitial', 'Post interstitial', 'A full-width ad between posts.', 1)
ON CONFLICT (slug) DO NOTHING;

-- A signed-in user's stable pseudonymous viewer id. Hosters pass it with decisions; it lets
-- the ad server find the user's on-chain consent without learning who is browsing where.
CREATE TABLE viewer_ids (
    user_id    uuid        NOT NULL,
    viewer_id  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT viewer_ids_pkey PRIMARY KEY (user_id),
    CONSTRAINT viewer_ids_viewer_id_key UNIQUE (viewer_id),
    CONSTRAINT viewer_ids_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- Billed events: the tracking issue writes one row per billed receipt. Analytics and the
-- scheduler's budget checks read them; served (decision) counts are kept apart below.
CREATE TABLE billed_events (
    id              bigint         GENERATED ALWAYS AS IDENTITY,
    ticket_id       uuid           NOT NULL,
    event           billable_event NOT NULL,
    campaign_id     uuid           NOT NULL,
    ad_id           uuid           NOT NULL,
    hoster_node_id  uuid           NOT NULL,
    witness_node_id uuid,
    price           numeric(39, 0) NOT NULL,
    occurred_at     timestamptz    NOT NULL,
    billed_at       timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT billed_events_pkey PRIMARY KEY (id),
    CONSTRAINT billed_events_ticket_event_key UNIQUE (ticket_id, event),
    CONSTRAINT billed_events_campaign_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id),
    CONSTRAINT billed_events_ad_fkey FOREIGN KEY (ad_id) REFERENCES ads (id),
    CONSTRAINT billed_events_hoster_fkey FOREIGN KEY (hoster_node_id) REFERENCES nodes (id),
    CONSTRAINT billed_events_witness_fkey FOREIGN KEY (witness_node_id) REFERENCES nodes (id),
    CONSTRAINT billed_events_price_positive CHECK (price > 0)
);
CREATE INDEX billed_events_campaign_idx ON billed_events (campaign_id, billed_at);

-- Decisions served, counted in memory and flushed in 15-minute buckets: fine enough to
-- attribute to days in any zone (offsets are whole quarter hours), coarse enough to stay small.
CREATE TABLE served_counts (
    ad_id          uuid        NOT NULL,
    hoster_node_id uuid        NOT NULL,
    bucket         timestamptz NOT NULL,
    decisions      bigint      NOT NULL,
    CONSTRAINT served_counts_pkey PRIMARY KEY (ad_id, hoster_node_id, bucket),
    CONSTRAINT served_counts_ad_fkey FOREIGN KEY (ad_id) REFERENCES ads (id) ON DELETE CASCADE,
    CONSTRAINT served_counts_node_fkey FOREIGN KEY (hoster_node_id) REFERENCES nodes (id) ON DELETE CASCADE
);

-- What each campaign may still spend: the on-chain remaining budget of its escrow campaign
-- (zero unless opened by the brand owner's wallet in the campaign's token) less what is
-- billed but not yet settled. The one definition the scheduler, the ad server and
-- analytics share.
CREATE FUNCTION campaign_budgets(p_chain_id bigint)
RETURNS TABLE (campaign_id uuid, funded boolean, on_chain_remaining numeric, billed numeric, settled numeric, available numeric)
LANGUAGE sql STABLE AS $$
    WITH billed AS (
        SELECT e.campaign_id, sum(e.price) AS billed FROM billed_events e GROUP BY e.campaign_id
    )
    SELECT c.id,
           cv.campaign_id IS NOT NULL,
           coalesce(cv.remaining, 0),
           coalesce(b.billed, 0),
           coalesce(cv.debited, 0),
           greatest(coalesce(cv.remaining, 0) - greatest(coalesce(b.billed, 0) - coalesce(cv.debited, 0), 0), 0)
    FROM campaigns c
    JOIN brands br ON br.id = c.brand_id
    JOIN users u ON u.id = br.owner_id
    LEFT JOIN campaigns_view cv
           ON cv.chain_id = p_chain_id AND cv.campaign_id = c.chain_campaign_id
          AND cv.advertiser = u.address AND cv.token = c.token
    LEFT JOIN billed b ON b.campaign_id = c.id
$$;

-- The serving index rebuilds when anything it holds changes. Statement triggers and
-- Postgres folding duplicate notifications per transaction keep this to one message per
-- write, however many rows it touches.
CREATE FUNCTION notify_serving_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('serving_index', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['brands', 'campaigns', 'ad_sets', 'ads', 'placements', 'default_prices',
                             'nodes', 'user_roles', 'viewer_ids', 'mirror_consent_events',
                             'mirror_campaign_events', 'mirror_settlement_debits']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION notify_serving_change()',
                       t || '_serving_change', t);
    END LOOP;
END;
$$;
