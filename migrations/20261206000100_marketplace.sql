-- The marketplace: sellers list digital items, buyers pay for them from their wallets into
-- an order's escrow (an escrow account of kind `order`), and a paid order carries a license
-- and downloads. A sale posts the seller's proceeds and the platform's fee to the ledger,
-- held until the order's refund window ends.

ALTER TYPE user_role ADD VALUE 'seller';
ALTER TYPE user_role ADD VALUE 'buyer';
-- A refund after the refund window pays the buyer back through the claim.
ALTER TYPE ledger_role ADD VALUE 'buyer';

-- Items ------------------------------------------------------------------------------------
CREATE TYPE market_category AS ENUM (
    'creative_template', 'audience_research', 'data_set', 'software', 'other');
-- draft: only its seller sees it; published: listed and for sale; unlisted: for sale to
-- whoever has its link, not listed; retired: no longer sold (orders keep their licenses).
CREATE TYPE market_item_state AS ENUM ('draft', 'published', 'unlisted', 'retired');

-- What an item is found by: title first, then tags, then the description. 'simple' keeps
-- words as written (lower case), which suits product names and tags better than a
-- language's stemmer. (array_to_string is only STABLE in general; for text[] it cannot
-- change, so the wrapper may say IMMUTABLE and feed a generated column.)
CREATE FUNCTION market_search_vector(title text, tags text[], description text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, title), 'A')
        || setweight(to_tsvector('simple'::regconfig, array_to_string(tags, ' ')), 'B')
        || setweight(to_tsvector('simple'::regconfig, description), 'C')
$$;

CREATE TABLE market_items (
    id               uuid              NOT NULL DEFAULT gen_random_uuid(),
    seller_id        uuid              NOT NULL,
    title            text              NOT NULL,
    description      text              NOT NULL DEFAULT '',
    category         market_category   NOT NULL,
    tags             text[]            NOT NULL DEFAULT '{}',
    -- The platform's fee on this item, set by an admin; NULL: the seller's, else the default.
    fee_bps          integer,
    -- License terms: how many devices at once, and for how long (NULL: perpetual).
    activation_limit integer           NOT NULL,
    license_days     integer,
    state            market_item_state NOT NULL DEFAULT 'draft',
    published_at     timestamptz,
    created_at       timestamptz       NOT NULL DEFAULT now(),
    updated_at       timestamptz       NOT NULL DEFAULT now(),
    search           tsvector          GENERATED ALWAYS AS (
        market_search_vector(title, tags, description)) STORED,
    CONSTRAINT market_items_pkey PRIMARY KEY (id),
    CONSTRAINT market_items_seller_fkey FOREIGN KEY (seller_id) REFERENCES users (id),
    CONSTRAINT market_items_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT market_items_description_length CHECK (char_length(description) <= 10000),
    CONSTRAINT market_items_tags_count CHECK (cardinality(tags) <= 10),
    CONSTRAINT market_items_fee_bounds CHECK (fee_bps BETWEEN 0 AND 5000),
    CONSTRAINT market_items_activation_limit CHECK (activation_limit BETWEEN 1 AND 1000),
    CONSTRAINT market_items_license_days CHECK (license_days BETWEEN 1 AND 3650),
    CONSTRAINT market_items_published_at CHECK (state = 'draft' OR published_at IS NOT NULL)
);
CREATE TRIGGER market_items_updated_at BEFORE UPDATE ON market_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- The public listing: only published items, newest first, searched by words or by tag.
CREATE INDEX market_items_listed_idx ON market_items (published_at DESC, id DESC) WHERE state = 'published';
CREATE INDEX market_items_listed_category_idx ON market_items (category, published_at DESC, id DESC)
    WHERE state = 'published';
CREATE INDEX market_items_search_idx ON market_items USING gin (search) WHERE state = 'published';
CREATE INDEX market_items_tags_idx ON market_items USING gin (tags) WHERE state = 'published';
CREATE INDEX market_items_seller_idx ON market_items (seller_id, created_at DESC);

-- An item's price in each token it is sold for, in base units.
CREATE TABLE market_prices (
    item_id uuid           NOT NULL,
    token   bytea          NOT NULL,
    price   numeric(78, 0) NOT NULL,
    CONSTRAINT market_prices_pkey PRIMARY KEY (item_id, token),
    CONSTRAINT market_prices_item_fkey FOREIGN KEY (item_id) REFERENCES market_items (id) ON DELETE CASCADE,
    CONSTRAINT market_prices_token_length CHECK (octet_length(token) = 20),
    CONSTRAINT market_prices_positive CHECK (price > 0 AND price < 2 ^ 128)
);

-- A seller's fee, set by an admin, for its items without a fee of their own.
CREATE TABLE market_sellers (
    user_id    uuid        NOT NULL,
    fee_bps    integer     NOT NULL,
    set_by     uuid        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_sellers_pkey PRIMARY KEY (user_id),
    CONSTRAINT market_sellers_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT market_sellers_set_by_fkey FOREIGN KEY (set_by) REFERENCES users (id),
    CONSTRAINT market_sellers_fee_bounds CHECK (fee_bps BETWEEN 0 AND 5000)
);

-- An item's files, kept in the object store under a random key (never a guessable path).
CREATE TABLE market_files (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    item_id      uuid        NOT NULL,
    name         text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL,
    sha256       bytea       NOT NULL,
    object_key   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_files_pkey PRIMARY KEY (id),
    CONSTRAINT market_files_item_fkey FOREIGN KEY (item_id) REFERENCES market_items (id),
    CONSTRAINT market_files_object_key_key UNIQUE (object_key),
    CONSTRAINT market_files_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT market_files_size CHECK (size > 0),
    CONSTRAINT market_files_sha256_length CHECK (octet_length(sha256) = 32)
);
CREATE INDEX market_files_item_idx ON market_files (item_id, created_at);

-- Orders -----------------------------------------------------------------------------------
-- awaiting_payment: the buyer has not funded the escrow (as asked) yet; paid: the sale is
-- posted and the license issued; refused: funded wrongly or late (the buyer withdraws it
-- after end + grace); refunded: the seller or an admin gave the money back.
CREATE TYPE market_order_state AS ENUM ('awaiting_payment', 'paid', 'refused', 'refunded');

-- An order is an escrow account of kind `order` (same id) for one item.
CREATE TABLE market_orders (
    id              uuid               NOT NULL,
    item_id         uuid               NOT NULL,
    buyer_id        uuid               NOT NULL,
    seller_id       uuid               NOT NULL,
    -- Where the sale's shares go, fixed when the order is made.
    seller_address  bytea              NOT NULL,
    platform        bytea              NOT NULL,
    fee_bps         integer            NOT NULL,
    -- The license terms sold, fixed when the order is made.
    activation_limit integer           NOT NULL,
    license_days    integer,
    -- Funding mirrored after this is late.
    pay_by          timestamptz        NOT NULL,
    state           market_order_state NOT NULL DEFAULT 'awaiting_payment',
    paid_at         timestamptz,
    -- The seller's share of the price, as the sale posted it.
    proceeds        numeric(78, 0),
    refused_reason  text,
    refunded_at     timestamptz,
    refunded_by     uuid,
    refund_reason   text,
    created_at      timestamptz        NOT NULL DEFAULT now(),
    CONSTRAINT market_orders_pkey PRIMARY KEY (id),
    CONSTRAINT market_orders_escrow_fkey FOREIGN KEY (id) REFERENCES escrow_accounts (id),
    CONSTRAINT market_orders_item_fkey FOREIGN KEY (item_id) REFERENCES market_items (id),
    CONSTRAINT market_orders_buyer_fkey FOREIGN KEY (buyer_id) REFERENCES users (id),
    CONSTRAINT market_orders_seller_fkey FOREIGN KEY (seller_id) REFERENCES users (id),
    CONSTRAINT market_orders_refunded_by_fkey FOREIGN KEY (refunded_by) REFERENCES users (id),
    CONSTRAINT market_orders_fee_bounds CHECK (fee_bps BETWEEN 0 AND 5000),
    CONSTRAINT market_orders_state_fields CHECK (
        CASE state
            WHEN 'awaiting_payment' THEN paid_at IS NULL AND refunded_at IS NULL
            WHEN 'paid' THEN paid_at IS NOT NULL AND proceeds IS NOT NULL AND refunded_at IS NULL
            WHEN 'refused' THEN refused_reason IS NOT NULL AND paid_at IS NULL
            ELSE paid_at IS NOT NULL AND refunded_at IS NOT NULL AND refunded_by IS NOT NULL
        END)
);
-- The indexer's step looks for orders whose funding has arrived.
CREATE INDEX market_orders_awaiting_idx ON market_orders (created_at) WHERE state = 'awaiting_payment';
CREATE INDEX market_orders_buyer_idx ON market_orders (buyer_id, created_at DESC);
CREATE INDEX market_orders_seller_idx ON market_orders (seller_id, created_at DESC);

-- Licenses ---------------------------------------------------------------------------------
-- One per paid order. `activations` is the count of `market_activations` rows, kept beside
-- them so that the limit is one conditional update.
CREATE TABLE market_licenses (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    order_id         uuid        NOT NULL,
    activation_limit integer     NOT NULL,
    activations      integer     NOT NULL DEFAULT 0,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz,
    revoked_at       timestamptz,
    revoke_reason    text,
    CONSTRAINT market_licenses_pkey PRIMARY KEY (id),
    CONSTRAINT market_licenses_order_key UNIQUE (order_id),
    CONSTRAINT market_licenses_order_fkey FOREIGN KEY (order_id) REFERENCES market_orders (id),
    CONSTRAINT market_licenses_activations CHECK (activations BETWEEN 0 AND activation_limit)
);

CREATE TABLE market_activations (
    license_id   uuid        NOT NULL,
    device       text        NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_activations_pkey PRIMARY KEY (license_id, device),
    CONSTRAINT market_activations_license_fkey FOREIGN KEY (license_id) REFERENCES market_licenses (id),
    CONSTRAINT market_activations_device_length CHECK (char_length(device) BETWEEN 1 AND 200)
);

-- Every download served, for the counts sellers and buyers see.
CREATE TABLE market_downloads (
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    order_id      uuid        NOT NULL,
    file_id       uuid        NOT NULL,
    downloaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_downloads_pkey PRIMARY KEY (id),
    CONSTRAINT market_downloads_order_fkey FOREIGN KEY (order_id) REFERENCES market_orders (id),
    CONSTRAINT market_downloads_file_fkey FOREIGN KEY (file_id) REFERENCES market_files (id)
);
CREATE INDEX market_downloads_order_idx ON market_downloads (order_id, file_id);
