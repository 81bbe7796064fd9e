-- 11: the audit log's hash chains. Several chains, so that sign-ins on
-- several nodes do not all wait for one lock: each append locks one
-- chain's head until its commit. Each row gets its chain, its place and
-- its MAC; the head keeps the last place and MAC. The rows already there
-- are linked, in id order, as chain 0's first rows when a node first
-- opens the database with the master key (legacy_upto: up to which id).
-- Written to run again over itself.
ALTER TABLE audit
	ADD COLUMN IF NOT EXISTS chain INT,
	ADD COLUMN IF NOT EXISTS seq BIGINT,
	ADD COLUMN IF NOT EXISTS mac BYTEA;
CREATE UNIQUE INDEX IF NOT EXISTS audit_chain ON audit (chain, seq);
CREATE TABLE IF NOT EXISTS audit_head (
	chain       INT PRIMARY KEY,
	seq         BIGINT NOT NULL DEFAULT 0,
	mac         BYTEA,
	legacy_upto BIGINT NOT NULL DEFAULT 0
);
INSERT INTO audit_head (chain, legacy_upto)
	SELECT c, CASE WHEN c = 0 THEN (SELECT COALESCE(MAX(id), 0) FROM audit) ELSE 0 END FROM generate_series(0, 7) c
	ON CONFLICT (chain) DO NOTHING;
