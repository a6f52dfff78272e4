-- Idempotency keys (`Idempotency-Key` request header): one row per key a caller sent to an
-- operation that creates or changes something, holding the first request's fingerprint and,
-- once it succeeded, its answer, so that the same request sent again gets that answer and
-- not a second effect.
--
-- A key is scoped to its caller (a user, or a hoster node), the method and the route (the
-- path template: `/v1/campaigns/{id}/status`), so keys of different callers never meet. A
-- row without an answer is a request in flight, owned by the attempt that wrote `attempt`;
-- one whose `locked_at` is older than the API's lock timeout belongs to a process that died
-- and may be taken over. Only successes (2xx) are kept: any other answer deletes the row,
-- and the client may retry with the same key. Rows live until `expires_at` (the key
-- lifetime after first use); the API's housekeeping deletes them after that.
CREATE TABLE idempotency_keys (
    caller_kind text NOT NULL,
    caller_id uuid NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    key text NOT NULL,
    -- SHA-256 of the method, path and body of the request that first used the key.
    fingerprint bytea NOT NULL,
    attempt uuid NOT NULL,
    locked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    status smallint,
    content_type text,
    location text,
    body bytea,
    completed_at timestamptz,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller_kind, caller_id, method, route, key),
    CONSTRAINT idempotency_keys_caller_kind_check CHECK (caller_kind IN ('user', 'node')),
    -- 1 to 255 visible ASCII characters, as the API parses it.
    CONSTRAINT idempotency_keys_key_check CHECK (key ~ '^[!-~]{1,255}$'),
    CONSTRAINT idempotency_keys_fingerprint_check CHECK (octet_length(fingerprint) = 32),
    CONSTRAINT idempotency_keys_answer_check CHECK (
        (status IS NULL AND content_type IS NULL AND location IS NULL AND body IS NULL
            AND completed_at IS NULL)
        OR (status BETWEEN 200 AND 299 AND body IS NOT NULL AND completed_at IS NOT NULL)
    )
);

-- The housekeeping sweep of expired keys.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
