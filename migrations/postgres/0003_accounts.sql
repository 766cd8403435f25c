-- Accounts and security: two-step login, lockout, forced password changes,
-- session idle time, login rate limits, dispatch areas, promotion requests,
-- notifications, and the audit log's hash chain.

-- Two-step login (TOTP). The secret is needed in the clear to check codes;
-- totp_last_step is the last time step accepted, so a code works once only.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- Failed logins since the last good one; reaching the limit blocks logins until
-- login_locked_until. An admin's lock is locked_at (with no end: locked_until NULL).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_locked_until TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ;

-- One-time recovery codes for two-step login; only their hashes are kept.
CREATE TABLE recovery_codes (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Console sessions end after a time without use.
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- Fixed-window counters for login attempts, per address and per username.
CREATE TABLE rate_limits (
    key           TEXT PRIMARY KEY,
    window_start  TIMESTAMPTZ NOT NULL,
    hits          INTEGER NOT NULL
);

-- Dispatch areas. Users and bags name their area; a retired area keeps its history.
CREATE TABLE areas (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);
-- Names that differ only in case are one area (the first spelling wins).
INSERT INTO areas (name, created_at)
SELECT MIN(dispatch_area), now()
FROM (SELECT dispatch_area FROM users UNION SELECT dispatch_area FROM bags) named
WHERE dispatch_area IS NOT NULL
GROUP BY lower(dispatch_area);
CREATE UNIQUE INDEX areas_name ON areas (lower(name));
CREATE INDEX users_area ON users (dispatch_area) WHERE dispatch_area IS NOT NULL;

-- A user asks for another role; an admin decides.
CREATE TABLE promotion_requests (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'biller', 'dispatcher')),
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at  TIMESTAMPTZ NOT NULL,
    decided_by  BIGINT REFERENCES users (id),
    decided_at  TIMESTAMPTZ,
    note        TEXT
);
CREATE UNIQUE INDEX promotion_requests_one_pending ON promotion_requests (user_id) WHERE status = 'pending';
CREATE INDEX promotion_requests_status ON promotion_requests (status, id);

-- In-app notifications.
CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    read_at     TIMESTAMPTZ
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- The audit chain. Each audit row is queued in audit_unsealed by the transaction
-- that writes it; the sealer appends it to audit_chain in commit order, with a
-- hash over the row's content and the previous link's hash.
CREATE TABLE audit_unsealed (
    audit_id  BIGINT PRIMARY KEY
);
CREATE TABLE audit_chain (
    seq       BIGINT PRIMARY KEY,
    audit_id  BIGINT NOT NULL UNIQUE,
    hash      TEXT NOT NULL
);
INSERT INTO audit_unsealed (audit_id) SELECT id FROM audit_log;
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE FUNCTION traitortrack_append_only() RETURNS TRIGGER AS $$
BEGIN
    RAISE EXCEPTION 'the table % is append-only', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION traitortrack_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION traitortrack_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION traitortrack_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION traitortrack_append_only();
