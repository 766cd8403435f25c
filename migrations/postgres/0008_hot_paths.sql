-- The hot paths' writes: a scan, a station event, an imported row.
--
-- Links and events no longer carry foreign keys. PostgreSQL checks each
-- reference with a query of its own that locks the row it finds (FOR KEY
-- SHARE: a WAL record and a dirtied page for each new child), so a link
-- paid for four checks and an event for two: a third of an import's
-- database time. Nothing is lost by it: bags, users and stations are never
-- deleted (accounts are switched off, stations revoked), and every id in a
-- link or an event comes from a join on its table in the same statement.
-- The benchmark's invariants check that every link's parent and child exist.
ALTER TABLE links
    DROP CONSTRAINT links_parent_id_fkey,
    DROP CONSTRAINT links_child_id_fkey,
    DROP CONSTRAINT links_user_id_fkey,
    DROP CONSTRAINT links_station_id_fkey;
ALTER TABLE events
    DROP CONSTRAINT events_station_id_fkey,
    DROP CONSTRAINT events_user_id_fkey;

-- Bags by dispatch area: only bags that have one (imported children do not).
DROP INDEX bags_area_code;
CREATE INDEX bags_area_code ON bags (dispatch_area, code) WHERE dispatch_area IS NOT NULL;
