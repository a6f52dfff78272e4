-- A witness now confirms only the receipts it observed itself: a bitmap over the batch's
-- receipts (docs/ENCODING.md), signed by both nodes. Receipts it did not confirm are billed
-- as unwitnessed, so billed_events.witness_node_id is set per receipt.
ALTER TABLE receipt_batches ADD COLUMN witness_confirmed bytea;

-- Batches witnessed before this change were co-signed for every receipt.
UPDATE receipt_batches
SET witness_confirmed = decode(
        repeat('ff', receipt_count / 8)
        || CASE WHEN receipt_count % 8 = 0 THEN ''
                ELSE lpad(to_hex((1 << (receipt_count % 8)) - 1), 2, '0') END,
        'hex')
WHERE witness_node_id IS NOT NULL;

ALTER TABLE receipt_batches
    ADD CONSTRAINT receipt_batches_witness_confirms
        CHECK ((witness_node_id IS NULL) = (witness_confirmed IS NULL)),
    ADD CONSTRAINT receipt_batches_confirmed_fits
        CHECK (octet_length(witness_confirmed) = (receipt_count + 7) / 8);
