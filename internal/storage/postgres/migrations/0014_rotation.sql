-- 14: scheduled seed rollover. rotation_at (ms) is when a node last
-- claimed the camera for a scheduled rotation; rotation_hours counts the
-- scheduled rotations started in each hour (ms of its start) by every
-- node (the hourly share of the fleet); its row is the lock that
-- serialises nodes claiming in the same hour. prev_seed is the seed the
-- last rotation replaced, its codes accepted until prev_until (ms;
-- model.RotationGrace). Written to run again over itself.
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS rotation_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS prev_seed BYTEA;
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS prev_until BIGINT NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS rotation_hours (
	hour    BIGINT PRIMARY KEY,
	started INTEGER NOT NULL DEFAULT 0
);
