-- Billing throughput: what each billed receipt cost beyond its own row.

-- 1. The ledger's balance check ran once per entry at commit, each run summing every entry
-- of the posting again: quadratic in a posting's size, inside the time a batch holds its
-- campaigns' spend rows. It now runs once per statement and sums only what the statement
-- inserted, per posting. That is enough: a posting starts with no entries, entries can
-- never be changed or removed, and every statement's entries for a posting sum to zero,
-- so every posting sums to zero after every statement. (Stricter than before: a posting's
-- entries go in together, as `ledger::post` writes them.)
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
DROP FUNCTION ledger_check_balanced();

CREATE FUNCTION ledger_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT posting_id INTO unbalanced FROM inserted GROUP BY posting_id HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger posting % does not balance', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_balanced();

-- 2. Frequency caps look billed events up by (ad, viewer). A B-tree over the ad and the
-- 32-byte viewer hash took a random leaf page for every billed receipt, the largest single
-- cost of billing. A hash index over one bigint per pair (`frequency_key`, the first 8
-- bytes of SHA-256(ad id || viewer hash), written by billing) costs a third as much to
-- keep, and a lookup reads one bucket; the rows' own ad and viewer hash settle a collision.
ALTER TABLE billed_events ADD COLUMN frequency_key bigint;
UPDATE billed_events
SET frequency_key = ('x' || encode(substr(sha256(uuid_send(ad_id) || viewer_hash), 1, 8), 'hex'))::bit(64)::bigint
WHERE viewer_hash IS NOT NULL;
ALTER TABLE billed_events ADD CONSTRAINT billed_events_frequency_key
    CHECK ((frequency_key IS NULL) = (viewer_hash IS NULL));
DROP INDEX billed_events_frequency_idx;
CREATE INDEX billed_events_frequency_idx ON billed_events USING hash (frequency_key)
    WHERE frequency_key IS NOT NULL AND event IN ('impression', 'click');

-- 3. A batch adds to its campaigns' and its brand's running totals last, holding those rows
-- until it commits; every other batch for the same campaigns waits meanwhile. One call
-- does all of it, so the rows are held for one round trip instead of three.
--
-- The caller passes campaigns and brand days sorted by id, and rows are updated one by
-- one in that order, so two batches never wait on each other in a cycle. (A set-based
-- update locks rows in whatever order its plan visits them, and re-checking a row that
-- another batch updated meanwhile re-runs the whole plan.) Returns false when a cap would
-- be passed: the caller rolls back and judges again against what the other batch committed.
CREATE FUNCTION add_billed_spend(
    p_campaigns uuid[], p_campaign_deltas numeric[], p_campaign_caps numeric[],
    p_brands uuid[], p_days date[], p_brand_deltas numeric[], p_brand_limits numeric[])
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_campaigns), 0) LOOP
        UPDATE campaign_spend SET billed = billed + p_campaign_deltas[i]
        WHERE campaign_id = p_campaigns[i] AND billed + p_campaign_deltas[i] <= p_campaign_caps[i];
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_brands), 0) LOOP
        INSERT INTO brand_daily_spend AS s (brand_id, day, spend)
        SELECT p_brands[i], p_days[i], p_brand_deltas[i] WHERE p_brand_deltas[i] <= p_brand_limits[i]
        ON CONFLICT (brand_id, day) DO UPDATE SET spend = s.spend + excluded.spend
        WHERE s.spend + excluded.spend <= p_brand_limits[i];
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END;
$$;

-- 4. Analytics read billed events by the time they were billed, a day range at a time; the
-- B-tree over (campaign, billed_at) cost billing a random leaf page per receipt among the
-- campaigns' insertion points. billed_at only grows, so a BRIN index over it finds a range's
-- pages for next to nothing per insert; the campaign is a filter within that range. (When
-- one campaign's numbers over long ranges must be fast, they belong in a rollup table.)
DROP INDEX billed_events_campaign_idx;
CREATE INDEX billed_events_billed_at_idx ON billed_events USING brin (billed_at);
