-- Sign-out that takes effect at once, and a bound on what anonymous callers can write.
--
-- Access tokens name their sign-in (the refresh family). A request's token counts only while
-- that sign-in has a current refresh token: neither rotated (replaced by its successor in the
-- same transaction), nor revoked (sign-out, or a replayed refresh token), nor expired. The
-- partial index holds one row per live sign-in, so the check is one small index probe.
CREATE INDEX refresh_sessions_live_family_idx ON refresh_sessions (family_id)
    WHERE rotated_at IS NULL AND revoked_at IS NULL;

-- Who asked for a nonce: an HMAC-SHA256, under a server secret, of the client's network
-- (its IPv4 address, or the /64 of its IPv6 address). Raw addresses are never stored. NULL
-- only on nonces issued before this column existed, which expire within the nonce lifetime.
ALTER TABLE siwe_nonces ADD COLUMN client_hash bytea;

-- Counting a client's outstanding (unused, unexpired) nonces, to cap them.
CREATE INDEX siwe_nonces_outstanding_idx ON siwe_nonces (client_hash, expires_at)
    WHERE used_at IS NULL;
