-- Accounts, sign-in and the node registry: the base every later table refers to.
-- Addresses are stored as their 20 raw bytes; the API renders them EIP-55 checksummed.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TYPE user_role AS ENUM ('advertiser', 'hoster', 'viewer', 'admin');

CREATE TABLE users (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    address    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_address_key UNIQUE (address),
    CONSTRAINT users_address_length CHECK (octet_length(address) = 20)
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_roles (
    user_id    uuid        NOT NULL,
    role       user_role   NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role),
    CONSTRAINT user_roles_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- SIWE nonces: issued by GET /v1/auth/nonce, consumed exactly once by a successful sign-in.
CREATE TABLE siwe_nonces (
    nonce      text        NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CONSTRAINT siwe_nonces_pkey PRIMARY KEY (nonce)
);
CREATE INDEX siwe_nonces_expires_at_idx ON siwe_nonces (expires_at);

-- Refresh sessions. Each refresh rotates the token inside its family; presenting a rotated
-- token again means it leaked, so the whole family is revoked.
CREATE TABLE refresh_sessions (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    family_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    token_hash  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz,
    CONSTRAINT refresh_sessions_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX refresh_sessions_family_idx ON refresh_sessions (family_id);

-- API keys for machine clients. Only a SHA-256 of the key is kept: keys are 256-bit random,
-- so a slow password hash would add latency to every request and no security.
CREATE TABLE api_keys (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL,
    role         user_role   NOT NULL,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    key_hash     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Node registry: signing keys of hoster nodes. Receipts are verified against these addresses;
-- a node flagged can_witness may co-sign other hosters' receipt batches.
CREATE TABLE nodes (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    owner_id    uuid        NOT NULL,
    address     bytea       NOT NULL,
    name        text        NOT NULL,
    can_witness boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    CONSTRAINT nodes_pkey PRIMARY KEY (id),
    CONSTRAINT nodes_address_key UNIQUE (address),
    CONSTRAINT nodes_owner_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT nodes_address_length CHECK (octet_length(address) = 20),
    CONSTRAINT nodes_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);
CREATE INDEX nodes_owner_idx ON nodes (owner_id);
CREATE TRIGGER nodes_updated_at BEFORE UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
