-- PostgreSQL's 0002 adds a function for ordered advisory locks; SQLite has one
-- writer at a time and needs none. Kept so both backends share version numbers.
SELECT 1;
