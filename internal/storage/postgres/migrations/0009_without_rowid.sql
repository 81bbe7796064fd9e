-- 9: SQLite keeps the rows of tokens, throttle and otp_state in their
-- primary key's b-tree (WITHOUT ROWID), fewer pages per sign-in. The
-- schema is the same, and PostgreSQL stores tables its own way: nothing
-- changes here (the version keeps meaning one schema in both backends).
SELECT 1;
