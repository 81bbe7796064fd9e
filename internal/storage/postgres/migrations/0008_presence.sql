-- 8: camera presence in the database, so every node and the fleet console
-- agree on which cameras are online; presence_at (ms) orders the broker's
-- events (a late one never undoes a newer one).
ALTER TABLE cameras
	ADD COLUMN online      BOOLEAN NOT NULL DEFAULT false,
	ADD COLUMN presence_at BIGINT NOT NULL DEFAULT 0;
