-- Bags by dispatch area: only bags that have one (imported children do not).
-- (PostgreSQL's 0008 also drops the foreign keys of links and events; here a
-- reference is checked by one lookup in the same file, with no lock and no
-- log record, so they stay.)
DROP INDEX bags_area_code;
CREATE INDEX bags_area_code ON bags (dispatch_area, code) WHERE dispatch_area IS NOT NULL;
