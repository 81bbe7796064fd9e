-- 8: camera presence in the database, so every node and the fleet console
-- agree on which cameras are online; presence_at (ms) orders the broker's
-- events (a late one never undoes a newer one). resent_at (ms) is when a
-- node last claimed the pending command for a resend.
ALTER TABLE cameras
	ADD COLUMN online      BOOLEAN NOT NULL DEFAULT false,
	ADD COLUMN presence_at BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN resent_at   BIGINT NOT NULL DEFAULT 0;
