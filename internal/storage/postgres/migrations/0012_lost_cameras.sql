-- 12: lost or stolen cameras: when a camera was reported, by whom, why, and
-- the highest provisioning version it had then (found needs a seed proven
-- under a later one). NULL lost_at: not lost. Written to run again over
-- itself.
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS lost_at BIGINT;
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS lost_by TEXT;
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS lost_reason TEXT;
ALTER TABLE cameras ADD COLUMN IF NOT EXISTS lost_version BIGINT;
CREATE INDEX IF NOT EXISTS cameras_lost ON cameras (lost_at) WHERE lost_at IS NOT NULL;
