-- Campaign dates as the service can compute with them. Postgres keeps instants up to the
-- year 294276 and 'infinity'; the service's clock types stop at the end of 9999, and a
-- value past that cannot even be read into them, so one such row would stop every reader
-- of campaigns. The scheduler and the serving index read dates through this function:
-- past either end of the range, a date is that end (which no schedule can tell apart).
CREATE FUNCTION schedule_instant(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN least(greatest(at, timestamptz '4713-11-24 00:00:00+00 BC'), timestamptz '9999-12-30 22:00:00+00');
