-- TraitorTrack core schema (PostgreSQL). Migrations are add-only.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'biller', 'dispatcher')),
    dispatch_area   TEXT,
    deactivated_at  TIMESTAMPTZ,
    locked_at       TIMESTAMPTZ,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE stations (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_seen_at  TIMESTAMPTZ
);

-- Only a hash of each bearer token is kept.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    station_id    BIGINT REFERENCES stations (id),
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Workers who logged in at a station through the server: only they may sync events from it.
CREATE TABLE station_workers (
    station_id     BIGINT NOT NULL REFERENCES stations (id),
    user_id        BIGINT NOT NULL REFERENCES users (id),
    first_login_at TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (station_id, user_id)
);

CREATE TABLE bills (
    id              BIGSERIAL PRIMARY KEY,
    code            TEXT COLLATE "C" NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'ready', 'closed')),
    capacity        INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 500),
    parent_count    INTEGER NOT NULL DEFAULT 0 CHECK (parent_count >= 0 AND parent_count <= capacity),
    destination     TEXT,
    vehicle_number  TEXT,
    description     TEXT,
    created_by      BIGINT REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    closed_at       TIMESTAMPTZ,
    closed_by       BIGINT REFERENCES users (id),
    close_reason    TEXT
);
CREATE INDEX bills_status ON bills (status, code);
CREATE INDEX bills_created ON bills (created_at);

-- child_count is the parent's counter, kept in the same transaction as its links;
-- the CHECK is the last guard of the capacity cap.
CREATE TABLE bags (
    id             BIGSERIAL PRIMARY KEY,
    code           TEXT COLLATE "C" NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('parent', 'child')),
    capacity       INTEGER,
    child_count    INTEGER NOT NULL DEFAULT 0,
    bill_id        BIGINT REFERENCES bills (id),
    dispatch_area  TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'parent' AND capacity > 0 AND child_count BETWEEN 0 AND capacity)
        OR (kind = 'child' AND capacity IS NULL AND child_count = 0 AND bill_id IS NULL))
);
CREATE INDEX bags_bill ON bags (bill_id) WHERE bill_id IS NOT NULL;
CREATE INDEX bags_area_code ON bags (dispatch_area, code);

-- One row per child currently in a parent: UNIQUE (child_id) is "one parent per child".
CREATE TABLE links (
    id          BIGSERIAL PRIMARY KEY,
    parent_id   BIGINT NOT NULL REFERENCES bags (id),
    child_id    BIGINT NOT NULL UNIQUE REFERENCES bags (id),
    user_id     BIGINT REFERENCES users (id),
    station_id  BIGINT REFERENCES stations (id),
    event_id    UUID,
    linked_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX links_parent ON links (parent_id, id);

-- Every event a station sent, with the outcome it got: a resend returns this outcome.
CREATE TABLE events (
    id           UUID PRIMARY KEY,
    station_id   BIGINT NOT NULL REFERENCES stations (id),
    user_id      BIGINT REFERENCES users (id),
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    code         TEXT,
    scanned_at   TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    result       TEXT NOT NULL
);
CREATE INDEX events_station ON events (station_id, received_at);

-- Counters for constant-time totals, split in shards so concurrent writers
-- rarely wait on one another; a total is the sum of its shards.
CREATE TABLE counters (
    name   TEXT NOT NULL,
    shard  INTEGER NOT NULL,
    value  BIGINT NOT NULL,
    PRIMARY KEY (name, shard)
);

CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     BIGINT,
    actor        TEXT,
    station_id   BIGINT,
    action       TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_code  TEXT,
    before       TEXT,
    after        TEXT,
    request_id   TEXT,
    ip           TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_code);
