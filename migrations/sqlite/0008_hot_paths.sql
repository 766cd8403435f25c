-- The hot paths' writes: a scan, a station event, an imported row.
--
-- Links and events no longer carry foreign keys, as on PostgreSQL (see its
-- 0008): each reference cost a lookup per row, about a tenth of a large
-- import, and guarded against nothing that can happen: bags, users and
-- stations are never deleted (accounts are switched off, stations
-- revoked), and every id in a link or an event comes from a join on its
-- table in the same statement. SQLite drops a foreign key only by building
-- the table again.
CREATE TABLE links_new (
    id          INTEGER PRIMARY KEY,
    parent_id   BIGINT NOT NULL,
    child_id    BIGINT NOT NULL UNIQUE,
    user_id     BIGINT,
    station_id  BIGINT,
    event_id    BLOB,
    linked_at   INTEGER NOT NULL,
    import_id   BIGINT
);
INSERT INTO links_new (id, parent_id, child_id, user_id, station_id, event_id, linked_at, import_id)
    SELECT id, parent_id, child_id, user_id, station_id, event_id, linked_at, import_id FROM links;
DROP TABLE links;
ALTER TABLE links_new RENAME TO links;
CREATE INDEX links_parent ON links (parent_id, id);

CREATE TABLE events_new (
    id           BLOB PRIMARY KEY,
    station_id   BIGINT NOT NULL,
    user_id      BIGINT,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    code         TEXT,
    scanned_at   INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    result       TEXT NOT NULL
);
INSERT INTO events_new (id, station_id, user_id, kind, status, code, scanned_at, received_at, result)
    SELECT id, station_id, user_id, kind, status, code, scanned_at, received_at, result FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_station ON events (station_id, received_at);
CREATE INDEX events_refused ON events (received_at) WHERE status = 'rejected';

-- Bags by dispatch area: only bags that have one (imported children do not).
DROP INDEX bags_area_code;
CREATE INDEX bags_area_code ON bags (dispatch_area, code) WHERE dispatch_area IS NOT NULL;
