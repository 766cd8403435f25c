-- What each station last reported of itself with its requests: its app
-- version and how many scans were waiting in its outbox (besides the ones
-- the request carried). queue_before is the depth reported before that, so
-- the console can say whether the queue is growing. Written at most once a
-- minute per station, and at once when the version changes, the queue
-- empties, or it grows large.
ALTER TABLE stations ADD COLUMN app_version TEXT;
ALTER TABLE stations ADD COLUMN queue_depth BIGINT;
ALTER TABLE stations ADD COLUMN queue_before BIGINT;
