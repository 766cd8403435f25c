-- Takes transaction-scoped advisory locks on the given keys, in array order.
-- A batch of station events locks every bag and bill code it mentions, sorted,
-- before it touches a row: two batches that share a code then queue at this
-- step instead of deadlocking on rows taken in different orders.
CREATE FUNCTION traitortrack_lock_keys(keys BIGINT[]) RETURNS VOID AS $$
DECLARE
    k BIGINT;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
END
$$ LANGUAGE plpgsql;
