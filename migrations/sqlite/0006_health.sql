-- The dashboard's recent refusals: refused station events, newest first.
-- Partial, so applied scans (nearly every event) do not pay for the index.
CREATE INDEX events_refused ON events (received_at) WHERE status = 'rejected';
