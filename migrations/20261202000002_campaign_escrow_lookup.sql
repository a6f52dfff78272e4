-- One campaign's escrow, looked up by its id, in time that does not grow with history.
--
-- `campaigns_view` grouped every campaign's mirror events and every settlement debit ever
-- mirrored; billing asks for a batch's campaigns on every batch, and Postgres grouped all
-- of them first, so billing slowed with every settled epoch. Now:
-- - each campaign's debited total (settlements not revoked) is kept in
--   `mirror_campaign_debited` by triggers on the debits, settlements and revocations: new
--   debits add to it; anything else recomputes the campaigns the statement touched (a
--   reorg's rollback deletes from all of them in one statement: each trigger recomputes
--   from the final state, so the order they fire in does not matter);
-- - the rest of a campaign's escrow comes from its own few events, in `campaign_escrow`, a
--   SQL function Postgres inlines where it is called: under a LATERAL join it reads one
--   campaign's rows through the (chain_id, campaign_id) index. The view is that function
--   over every campaign.

CREATE TABLE mirror_campaign_debited (
    chain_id     bigint         NOT NULL,
    campaign_id  bytea          NOT NULL,
    debited      numeric(78, 0) NOT NULL,
    -- The latest block of a counted debit.
    block_number bigint         NOT NULL,
    CONSTRAINT mirror_campaign_debited_pkey PRIMARY KEY (chain_id, campaign_id)
);

-- Recomputes the debited totals of the given (chain, campaign) pairs from the mirror.
CREATE FUNCTION refresh_campaign_debited(p_chains bigint[], p_campaigns bytea[]) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM mirror_campaign_debited t
    USING UNNEST(p_chains, p_campaigns) AS k(chain_id, campaign_id)
    WHERE t.chain_id = k.chain_id AND t.campaign_id = k.campaign_id;
    INSERT INTO mirror_campaign_debited (chain_id, campaign_id, debited, block_number)
    SELECT d.chain_id, d.campaign_id, sum(d.amount), max(d.block_number)
    FROM (SELECT DISTINCT * FROM UNNEST(p_chains, p_campaigns)) AS k(chain_id, campaign_id)
    JOIN mirror_settlement_debits d ON d.chain_id = k.chain_id AND d.campaign_id = k.campaign_id
    JOIN mirror_settlements s
      ON s.chain_id = d.chain_id AND s.block_number = d.block_number AND s.log_index = d.log_index
    WHERE NOT EXISTS (
        SELECT 1 FROM mirror_settlement_revocations r
        WHERE r.chain_id = s.chain_id AND r.epoch = s.epoch AND r.root = s.root)
    GROUP BY d.chain_id, d.campaign_id;
$$;

-- New debits, the indexer's everyday write, are added to the totals (their settlement row
-- is written first, in the same transaction); what is rare (a rollback, a revocation, a
-- settlement row after its debits) recomputes the campaigns it touches.
CREATE FUNCTION mirror_debits_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mirror_campaign_debited AS t (chain_id, campaign_id, debited, block_number)
    SELECT d.chain_id, d.campaign_id, sum(d.amount), max(d.block_number)
    FROM changed d
    JOIN mirror_settlements s
      ON s.chain_id = d.chain_id AND s.block_number = d.block_number AND s.log_index = d.log_index
    WHERE NOT EXISTS (
        SELECT 1 FROM mirror_settlement_revocations r
        WHERE r.chain_id = s.chain_id AND r.epoch = s.epoch AND r.root = s.root)
    GROUP BY d.chain_id, d.campaign_id
    ON CONFLICT (chain_id, campaign_id) DO UPDATE
    SET debited = t.debited + excluded.debited, block_number = greatest(t.block_number, excluded.block_number);
    RETURN NULL;
END;
$$;

CREATE FUNCTION mirror_debits_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_campaign_debited(array_agg(chain_id), array_agg(campaign_id)) FROM changed;
    RETURN NULL;
END;
$$;

CREATE FUNCTION mirror_settlements_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_campaign_debited(array_agg(d.chain_id), array_agg(d.campaign_id))
    FROM changed s
    JOIN mirror_settlement_debits d
      ON d.chain_id = s.chain_id AND d.block_number = s.block_number AND d.log_index = s.log_index;
    RETURN NULL;
END;
$$;

CREATE FUNCTION mirror_revocations_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_campaign_debited(array_agg(d.chain_id), array_agg(d.campaign_id))
    FROM changed r
    JOIN mirror_settlements s ON s.chain_id = r.chain_id AND s.epoch = r.epoch AND s.root = r.root
    JOIN mirror_settlement_debits d
      ON d.chain_id = s.chain_id AND d.block_number = s.block_number AND d.log_index = s.log_index;
    RETURN NULL;
END;
$$;

CREATE TRIGGER mirror_debits_inserted AFTER INSERT ON mirror_settlement_debits
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_debits_inserted();
CREATE TRIGGER mirror_debits_deleted AFTER DELETE ON mirror_settlement_debits
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_debits_deleted();
CREATE TRIGGER mirror_settlements_inserted AFTER INSERT ON mirror_settlements
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_settlements_changed();
CREATE TRIGGER mirror_settlements_deleted AFTER DELETE ON mirror_settlements
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_settlements_changed();
CREATE TRIGGER mirror_revocations_inserted AFTER INSERT ON mirror_settlement_revocations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_revocations_changed();
CREATE TRIGGER mirror_revocations_deleted AFTER DELETE ON mirror_settlement_revocations
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION mirror_revocations_changed();

SELECT refresh_campaign_debited(array_agg(chain_id), array_agg(campaign_id))
FROM (SELECT DISTINCT chain_id, campaign_id FROM mirror_settlement_debits) k;

-- A campaign's escrow: funded and withdrawn from its events, debited from settlements that
-- were not revoked; `block_number` is the latest block that touched it. No row for a
-- campaign without events.
CREATE FUNCTION campaign_escrow(p_chain_id bigint, p_campaign_id bytea)
RETURNS TABLE (chain_id bigint, campaign_id bytea, advertiser bytea, token bytea, end_time bigint,
               funded numeric, debited numeric, withdrawn numeric, remaining numeric,
               closed_early boolean, block_number bigint)
LANGUAGE sql STABLE AS $$
    WITH events AS (
        SELECT (array_agg(account) FILTER (WHERE kind = 'opened'))[1] AS advertiser,
               (array_agg(token) FILTER (WHERE kind = 'opened'))[1] AS token,
               (array_agg(end_time ORDER BY block_number DESC, log_index DESC)
                    FILTER (WHERE kind IN ('opened', 'closed')))[1] AS end_time,
               coalesce(sum(amount) FILTER (WHERE kind = 'funded'), 0) AS funded,
               coalesce(sum(amount) FILTER (WHERE kind = 'withdrawn'), 0) AS withdrawn,
               bool_or(kind = 'closed') AS closed_early,
               max(block_number) AS block_number
        FROM mirror_campaign_events
        WHERE chain_id = p_chain_id AND campaign_id = p_campaign_id
        HAVING count(*) > 0
    )
    SELECT p_chain_id, p_campaign_id, e.advertiser, e.token, e.end_time, e.funded,
           coalesce(t.debited, 0), e.withdrawn,
           e.funded - coalesce(t.debited, 0) - e.withdrawn,
           e.closed_early,
           greatest(e.block_number, t.block_number)
    FROM events e
    LEFT JOIN mirror_campaign_debited t ON t.chain_id = p_chain_id AND t.campaign_id = p_campaign_id
$$;

DROP VIEW campaigns_view;
-- The keys come from `k`, so that a filter on them reaches the index before any campaign's
-- escrow is worked out.
CREATE VIEW campaigns_view AS
SELECT k.chain_id, k.campaign_id, e.advertiser, e.token, e.end_time, e.funded, e.debited, e.withdrawn,
       e.remaining, e.closed_early, e.block_number
FROM (SELECT DISTINCT chain_id, campaign_id FROM mirror_campaign_events) k
CROSS JOIN LATERAL campaign_escrow(k.chain_id, k.campaign_id) e;

CREATE OR REPLACE FUNCTION campaign_budgets(p_chain_id bigint, p_only uuid[] DEFAULT NULL)
RETURNS TABLE (campaign_id uuid, funded boolean, on_chain_remaining numeric, billed numeric, settled numeric, available numeric)
LANGUAGE sql STABLE AS $$
    SELECT c.id,
           cv.campaign_id IS NOT NULL,
           coalesce(cv.remaining, 0),
           coalesce(s.billed, 0),
           coalesce(cv.debited, 0),
           greatest(coalesce(cv.remaining, 0) - greatest(coalesce(s.billed, 0) - coalesce(cv.debited, 0), 0), 0)
    FROM campaigns c
    JOIN brands br ON br.id = c.brand_id
    JOIN users u ON u.id = br.owner_id
    LEFT JOIN LATERAL campaign_escrow(p_chain_id, c.chain_campaign_id) cv
           ON cv.advertiser = u.address AND cv.token = c.token
    LEFT JOIN campaign_spend s ON s.campaign_id = c.id
    WHERE p_only IS NULL OR c.id = ANY (p_only)
$$;
