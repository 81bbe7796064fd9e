-- 10: the fleet console. Roles: admin, fleet, security and officer (every
-- other role, the old "user" above all, becomes officer), held to those by
-- a CHECK. When a camera proved its active seed (cameras before this
-- version: their last change). When a code of a source was last accepted
-- (before this version: the time of its last step, 30 s steps). Written to
-- run again over itself.
UPDATE users SET role = 'officer' WHERE role NOT IN ('admin', 'fleet', 'security', 'officer');
ALTER TABLE users
	ALTER COLUMN role SET DEFAULT 'officer',
	DROP CONSTRAINT IF EXISTS users_role,
	ADD CONSTRAINT users_role CHECK (role IN ('admin', 'fleet', 'security', 'officer'));
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS seed_at BIGINT;
UPDATE cameras SET seed_at = updated_at WHERE seed IS NOT NULL AND seed_at IS NULL;
ALTER TABLE otp_state ADD COLUMN IF NOT EXISTS used_at BIGINT NOT NULL DEFAULT 0;
UPDATE otp_state SET used_at = (last_step - drift) * 30000 WHERE last_step >= 0 AND used_at = 0;
