-- Payees by permanent index, and settlements that list every token their tree pays
-- (docs/ENCODING.md).
--
-- The escrow records what each index has claimed, two indexes per storage slot, and a claim
-- logs only `Claimed(uint256 indexAndAmount)`, anonymous: the index in the high 128 bits,
-- the cumulative amount in the low 128. So an index must stand for one (account, token) for
-- the escrow's whole life, and this table is what turns a mirrored claim back into a payee.

-- Payee indexes ------------------------------------------------------------------------------
-- Assigned by the relayer when it builds an epoch in which a payee first has a leaf: the
-- next free indexes, densely from 0, new payees of the epoch in order of token then account
-- (so consecutive new payees share a slot). Written in the transaction that stores the
-- epoch's leaves: an index is committed with a tree that uses it, or not at all, and once
-- committed it never changes or goes away, whatever becomes of that epoch.
CREATE TABLE payout_indexes (
    chain_id   bigint NOT NULL,
    leaf_index bigint NOT NULL,
    account    bytea  NOT NULL,
    token      bytea  NOT NULL,
    CONSTRAINT payout_indexes_pkey PRIMARY KEY (chain_id, leaf_index),
    CONSTRAINT payout_indexes_payee_key UNIQUE (chain_id, account, token),
    CONSTRAINT payout_indexes_nonnegative CHECK (leaf_index >= 0),
    CONSTRAINT payout_indexes_account_length CHECK (octet_length(account) = 20),
    CONSTRAINT payout_indexes_token_length CHECK (octet_length(token) = 20)
);

CREATE FUNCTION payout_indexes_permanent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payout indexes are permanent: the escrow keys claimed amounts by them'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER payout_indexes_permanent BEFORE UPDATE OR DELETE ON payout_indexes
    FOR EACH ROW EXECUTE FUNCTION payout_indexes_permanent();

-- Every payee already known (a leaf, or a claim mirrored under the named event before
-- this version) gets an index now, by the same rule, so that older rows keep their meaning.
INSERT INTO payout_indexes (chain_id, leaf_index, account, token)
SELECT chain_id, row_number() OVER (PARTITION BY chain_id ORDER BY token, account) - 1, account, token
FROM (SELECT chain_id, account, token FROM payout_leaves
      UNION
      SELECT chain_id, account, token FROM mirror_claims) payees;

-- What an epoch settles per token ----------------------------------------------------------
-- Every token its tree pays, with the sum of that token's debits in the epoch (zero for a
-- token with leaves but no debits): `settle` rotates exactly the listed tokens to the new
-- root, and `activate` is checked against the same list. Written with the epoch's leaves.
CREATE TABLE settlement_totals (
    chain_id bigint         NOT NULL,
    epoch    bigint         NOT NULL,
    token    bytea          NOT NULL,
    amount   numeric(78, 0) NOT NULL,
    CONSTRAINT settlement_totals_pkey PRIMARY KEY (chain_id, epoch, token),
    CONSTRAINT settlement_totals_epoch_fkey FOREIGN KEY (chain_id, epoch) REFERENCES settlement_epochs (chain_id, epoch),
    CONSTRAINT settlement_totals_nonnegative CHECK (amount >= 0),
    CONSTRAINT settlement_totals_token_length CHECK (octet_length(token) = 20)
);

-- Epochs built before: confirmed ones settled the tokens they debited (the rule then);
-- the others will be settled under the new rule.
INSERT INTO settlement_totals (chain_id, epoch, token, amount)
SELECT chain_id, epoch, token, sum(amount)
FROM (SELECT chain_id, epoch, token, amount FROM settlement_debits
      UNION ALL
      SELECT l.chain_id, l.epoch, l.token, 0 FROM payout_leaves l
      JOIN settlement_epochs s USING (chain_id, epoch)
      WHERE s.confirmed_at IS NULL) settled
GROUP BY chain_id, epoch, token;

-- Claims by index ----------------------------------------------------------------------------
-- A claim row keeps what the log says: the index and the cumulative amount. The index is
-- the chain's 128-bit value, so that a claim under an index this database never assigned is
-- still mirrored as it is.
ALTER TABLE mirror_claims ADD COLUMN leaf_index numeric(39, 0);
UPDATE mirror_claims c SET leaf_index = i.leaf_index
FROM payout_indexes i
WHERE i.chain_id = c.chain_id AND i.account = c.account AND i.token = c.token;
ALTER TABLE mirror_claims ALTER COLUMN leaf_index SET NOT NULL;
ALTER TABLE mirror_claims ADD CONSTRAINT mirror_claims_leaf_index_range CHECK (leaf_index >= 0);

DROP VIEW claims_view;
DROP INDEX mirror_claims_account_idx;
ALTER TABLE mirror_claims DROP COLUMN account;
ALTER TABLE mirror_claims DROP COLUMN token;
CREATE INDEX mirror_claims_index_idx ON mirror_claims (chain_id, leaf_index);

-- Each payee's claimed total: the latest cumulative amount of its index, named through
-- `payout_indexes`. A claim under an index this database does not know has no account or
-- token here; per-account reads leave it out. (The account and token are in DISTINCT ON,
-- where an index implies them, so that a filter on them is applied before the DISTINCT.)
CREATE VIEW claims_view AS
SELECT DISTINCT ON (c.chain_id, i.account, i.token, c.leaf_index)
       c.chain_id, i.account, i.token, c.leaf_index, c.cumulative_amount, c.block_number
FROM mirror_claims c
LEFT JOIN payout_indexes i ON i.chain_id = c.chain_id AND i.leaf_index = c.leaf_index
ORDER BY c.chain_id, i.account, i.token, c.leaf_index, c.block_number DESC, c.log_index DESC;
