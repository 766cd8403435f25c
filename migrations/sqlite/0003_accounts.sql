-- Accounts and security: two-step login, lockout, forced password changes,
-- session idle time, login rate limits, dispatch areas, promotion requests,
-- notifications, and the audit log's hash chain. Times are Unix microseconds.

-- Two-step login (TOTP). The secret is needed in the clear to check codes;
-- totp_last_step is the last time step accepted, so a code works once only.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at INTEGER;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- Failed logins since the last good one; reaching the limit blocks logins until
-- login_locked_until. An admin's lock is locked_at (with no end: locked_until NULL).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_locked_until INTEGER;
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN password_changed_at INTEGER;

-- One-time recovery codes for two-step login; only their hashes are kept.
CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Console sessions end after a time without use.
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;

-- Fixed-window counters for login attempts, per address and per username.
CREATE TABLE rate_limits (
    key           TEXT PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    hits          INTEGER NOT NULL
);

-- Dispatch areas. Users and bags name their area; a retired area keeps its history.
CREATE TABLE areas (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
-- Names that differ only in case are one area (the first spelling wins).
INSERT INTO areas (name, created_at)
SELECT MIN(dispatch_area), CAST(strftime('%s', 'now') AS INTEGER) * 1000000
FROM (SELECT dispatch_area FROM users UNION SELECT dispatch_area FROM bags)
WHERE dispatch_area IS NOT NULL
GROUP BY lower(dispatch_area);
CREATE UNIQUE INDEX areas_name ON areas (lower(name));
CREATE INDEX users_area ON users (dispatch_area) WHERE dispatch_area IS NOT NULL;

-- A user asks for another role; an admin decides.
CREATE TABLE promotion_requests (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'biller', 'dispatcher')),
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at  INTEGER NOT NULL,
    decided_by  BIGINT REFERENCES users (id),
    decided_at  INTEGER,
    note        TEXT
);
CREATE UNIQUE INDEX promotion_requests_one_pending ON promotion_requests (user_id) WHERE status = 'pending';
CREATE INDEX promotion_requests_status ON promotion_requests (status, id);

-- In-app notifications.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    read_at     INTEGER
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- The audit chain. Each audit row is queued in audit_unsealed by the transaction
-- that writes it; the sealer appends it to audit_chain in commit order, with a
-- hash over the row's content and the previous link's hash.
CREATE TABLE audit_unsealed (
    audit_id  INTEGER PRIMARY KEY
);
CREATE TABLE audit_chain (
    seq       INTEGER PRIMARY KEY,
    audit_id  BIGINT NOT NULL UNIQUE,
    hash      TEXT NOT NULL
);
INSERT INTO audit_unsealed (audit_id) SELECT id FROM audit_log;
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the table audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the table audit_log is append-only'); END;
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'the table audit_chain is append-only'); END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'the table audit_chain is append-only'); END;
