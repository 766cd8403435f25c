-- Mail: each user's address, and the daily mails already sent (so that
-- several server processes send each one once). Times are microseconds.

ALTER TABLE users ADD COLUMN email TEXT;

CREATE TABLE mail_log (
    kind        TEXT NOT NULL,
    day         TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    tried_at    INTEGER NOT NULL,
    sent_at     INTEGER,
    recipients  INTEGER,
    last_error  TEXT,
    PRIMARY KEY (kind, day)
);
