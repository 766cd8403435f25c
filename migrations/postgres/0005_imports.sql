-- Imports of the warehouses' sheets: one row per import, with its progress
-- and counts. Bags and links an import made carry its id, so a bag's history
-- can say "imported" without a row per bag elsewhere. The id is a plain
-- number, not a foreign key: imports are never deleted, and a check per row
-- would slow a large import down.
CREATE TABLE imports (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT REFERENCES users (id),
    username        TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('bags', 'bills', 'child-parent', 'parent-bill')),
    file_name       TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    dry_run         BOOLEAN NOT NULL,
    all_or_nothing  BOOLEAN NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'done', 'rolled_back', 'failed', 'interrupted')),
    total_rows      BIGINT NOT NULL DEFAULT 0,
    rows_done       BIGINT NOT NULL DEFAULT 0,
    created         BIGINT NOT NULL DEFAULT 0,
    linked          BIGINT NOT NULL DEFAULT 0,
    already_there   BIGINT NOT NULL DEFAULT 0,
    refused         BIGINT NOT NULL DEFAULT 0,
    problems        TEXT,
    error           TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX imports_sha256 ON imports (sha256, state);

ALTER TABLE bags ADD COLUMN import_id BIGINT;
ALTER TABLE links ADD COLUMN import_id BIGINT;
