-- 13: clock telemetry: per camera the last signed clock report kept (seq,
-- its counter, refuses replays), the offset and round trip it gave (ms),
-- when the server received it (ms), and since when the camera's clock is
-- past the alert threshold or disagrees with its codes (ms; NULL: not so).
-- clock_challenges holds each camera's outstanding clock challenge: the
-- nonce its next report must sign and when the server sent it (ms), one
-- per camera, consumed by the report that answers it.
-- Written to run again over itself.
CREATE TABLE IF NOT EXISTS camera_clock (
	serial         TEXT PRIMARY KEY,
	seq            BIGINT NOT NULL,
	offset_ms      BIGINT NOT NULL,
	rtt_ms         BIGINT NOT NULL,
	reported_at    BIGINT NOT NULL,
	drifting_since BIGINT,
	mismatch_since BIGINT
);
CREATE TABLE IF NOT EXISTS clock_challenges (
	serial  TEXT PRIMARY KEY,
	nonce   BYTEA NOT NULL,
	sent_at BIGINT NOT NULL,
	sent_db BIGINT NOT NULL
);
