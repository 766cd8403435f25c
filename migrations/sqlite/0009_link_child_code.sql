-- A link keeps its child's code, as on PostgreSQL (see its 0009): every
-- lookup of a parent reads its children's codes from the links instead of
-- a descent of the bags' index per child. A bag's code never changes once
-- it is made, so the copy cannot go stale. SQLite adds a NOT NULL column
-- without a default only by building the table again.
CREATE TABLE links_new (
    id          INTEGER PRIMARY KEY,
    parent_id   BIGINT NOT NULL,
    child_id    BIGINT NOT NULL UNIQUE,
    user_id     BIGINT,
    station_id  BIGINT,
    event_id    BLOB,
    linked_at   INTEGER NOT NULL,
    import_id   BIGINT,
    child_code  TEXT NOT NULL
);
INSERT INTO links_new (id, parent_id, child_id, user_id, station_id, event_id, linked_at, import_id, child_code)
    SELECT l.id, l.parent_id, l.child_id, l.user_id, l.station_id, l.event_id, l.linked_at, l.import_id, b.code
    FROM links l LEFT JOIN bags b ON b.id = l.child_id;
DROP TABLE links;
ALTER TABLE links_new RENAME TO links;
CREATE INDEX links_parent ON links (parent_id, id);
