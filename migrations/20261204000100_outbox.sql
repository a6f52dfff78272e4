-- The outbox serves every domain that sends a transaction, whatever its kind: a kind is a
-- label the owning domain chooses (settle, activate, consent, ...), and a key the domain
-- derives from what the transaction is for makes enqueueing it twice a no-op. Domains keep
-- their own records of what a transaction did; the outbox keeps no domain columns.

-- Kinds are labels, not a fixed list: a new kind needs no migration.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_fields;
DROP INDEX outbox_epoch_key;
DROP INDEX outbox_digest_key;
ALTER TABLE outbox ALTER COLUMN kind TYPE text USING kind::text;
DROP TYPE outbox_kind;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_label CHECK (kind ~ '^[a-z][a-z0-9_]*$');

-- The key: a settlement's epoch, an activation's pending epoch, a consent message's
-- digest. Rows from before keys take theirs from what they carried; an activation did not
-- record its epoch, so its id stands in (those rows are all final by now or soon).
ALTER TABLE outbox ADD COLUMN key text;
UPDATE outbox SET key = CASE kind
    WHEN 'settle' THEN epoch::text
    WHEN 'consent' THEN '0x' || encode(digest, 'hex')
    ELSE 'row ' || id::text END;
ALTER TABLE outbox ALTER COLUMN key SET NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_key_length CHECK (length(key) BETWEEN 1 AND 200);
-- At most one live or confirmed transaction per key; once one fails, the owning domain
-- may enqueue the same key again.
CREATE UNIQUE INDEX outbox_key ON outbox (chain_id, kind, key) WHERE status <> 'failed';
ALTER TABLE outbox DROP COLUMN epoch;
ALTER TABLE outbox DROP COLUMN digest;

-- No gas limit: the outbox simulates the transaction before it takes a nonce.
ALTER TABLE outbox ALTER COLUMN gas_limit DROP NOT NULL;
UPDATE outbox SET gas_limit = NULL WHERE gas_limit = 0 AND nonce IS NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_gas_limit_positive CHECK (gas_limit > 0);
ALTER TABLE outbox ADD CONSTRAINT outbox_gas_before_nonce CHECK (nonce IS NULL OR gas_limit IS NOT NULL);

-- Fixed widths, as for every other chain value.
ALTER TABLE outbox ADD CONSTRAINT outbox_sender_length CHECK (octet_length(sender) = 20);
ALTER TABLE outbox ADD CONSTRAINT outbox_target_length CHECK (octet_length(target) = 20);
ALTER TABLE outbox ADD CONSTRAINT outbox_mined_tx_length CHECK (octet_length(mined_tx) = 32);
ALTER TABLE outbox ADD CONSTRAINT outbox_mined_block_hash_length CHECK (octet_length(mined_block_hash) = 32);
ALTER TABLE outbox_attempts ADD CONSTRAINT outbox_attempts_tx_hash_length CHECK (octet_length(tx_hash) = 32);

-- The nonces are the outbox's, for whichever key sends.
ALTER TABLE relayer_nonces RENAME TO outbox_nonces;
ALTER TABLE outbox_nonces RENAME CONSTRAINT relayer_nonces_pkey TO outbox_nonces_pkey;
ALTER TABLE outbox_nonces ADD CONSTRAINT outbox_nonces_sender_length CHECK (octet_length(sender) = 20);

-- A key's rows, newest last (the API reads a consent request's this way), and the rows
-- waiting for a nonce.
CREATE INDEX outbox_key_idx ON outbox (chain_id, kind, key, id);
CREATE INDEX outbox_unassigned_idx ON outbox (chain_id, id) WHERE status = 'queued' AND nonce IS NULL;
