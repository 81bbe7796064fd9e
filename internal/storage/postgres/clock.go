package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// RecordClock keeps a camera's clock report when its counter is above
// the last one kept: one conditional upsert.
func (s *Store) RecordClock(ctx context.Context, r model.ClockReport, alert time.Duration) (model.CameraClock, bool, error) {
	if r.Seq > 1<<63-1 {
		return model.CameraClock{}, false, fmt.Errorf("clock report of %s: counter out of range", r.Serial)
	}
	abs := r.Offset
	if abs < 0 {
		abs = -abs
	}
	var k storage.ClockScan
	err := s.queryRow(ctx, `INSERT INTO camera_clock AS k (serial, seq, offset_ms, rtt_ms, reported_at, drifting_since)
		SELECT $1, $2, $3, $4, $5, CASE WHEN $6::boolean THEN $5::bigint END WHERE EXISTS (SELECT 1 FROM cameras WHERE serial = $1)
		ON CONFLICT (serial) DO UPDATE SET seq = excluded.seq, offset_ms = excluded.offset_ms, rtt_ms = excluded.rtt_ms,
			reported_at = excluded.reported_at,
			drifting_since = CASE WHEN $6::boolean THEN COALESCE(k.drifting_since, excluded.reported_at) END
		WHERE excluded.seq > k.seq
		RETURNING `+storage.ReturnedClockCols,
		args(r.Serial, int64(r.Seq), r.Offset.Milliseconds(), r.RTT.Milliseconds(), r.At.UnixMilli(), abs > alert), k.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.CameraClock{}, false, nil
	}
	if err != nil {
		return model.CameraClock{}, false, fmt.Errorf("clock report of %s: %w", r.Serial, err)
	}
	return *k.Clock(), true, nil
}

// ChallengeClock keeps c as the camera's outstanding clock challenge,
// replacing an older one: one upsert.
func (s *Store) ChallengeClock(ctx context.Context, c model.ClockChallenge) error {
	tag, err := s.exec(ctx, `INSERT INTO clock_challenges (serial, nonce, sent_at, sent_db)
		SELECT $1, $2, $3, `+dbClockMS+` WHERE EXISTS (SELECT 1 FROM cameras WHERE serial = $1)
		ON CONFLICT (serial) DO UPDATE SET nonce = excluded.nonce, sent_at = excluded.sent_at, sent_db = excluded.sent_db`,
		c.Serial, c.Nonce, c.Sent.UnixMilli())
	if err != nil {
		return fmt.Errorf("clock challenge of %s: %w", c.Serial, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("clock challenge of %s: %w", c.Serial, storage.ErrNotFound)
	}
	return nil
}

// AnswerClock consumes the camera's outstanding clock challenge when its
// nonce is nonce: one conditional delete, which also measures how long
// ago the challenge was written by the server's clock (sent_db, the
// database's clock when it was written): the nodes' own clocks may
// disagree, the database's is one.
func (s *Store) AnswerClock(ctx context.Context, serial string, nonce []byte) (time.Time, time.Duration, bool, error) {
	var sent, elapsed int64
	err := s.queryRow(ctx, `DELETE FROM clock_challenges WHERE serial = $1 AND nonce = $2
		RETURNING sent_at, `+dbClockMS+` - sent_db`, args(serial, nonce), &sent, &elapsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, 0, false, nil
	}
	if err != nil {
		return time.Time{}, 0, false, fmt.Errorf("clock answer of %s: %w", serial, err)
	}
	return utc(sent), time.Duration(elapsed) * time.Millisecond, true, nil
}

// dbClockMS is the database server's clock now, in ms since the epoch
// (clock_timestamp: the time of the statement, not of the transaction).
const dbClockMS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`

// SetClockMismatch flags or clears the camera's clock mismatch in one
// conditional update: only the call that changes it is told so.
func (s *Store) SetClockMismatch(ctx context.Context, serial string, mismatch bool, at time.Time) (bool, error) {
	tag, err := s.exec(ctx, `UPDATE camera_clock SET mismatch_since = CASE WHEN $1::boolean THEN $2::bigint END
		WHERE serial = $3 AND (mismatch_since IS NOT NULL) <> $1::boolean`, mismatch, at.UnixMilli(), serial)
	if err != nil {
		return false, fmt.Errorf("clock mismatch of %s: %w", serial, err)
	}
	return tag.RowsAffected() == 1, nil
}

// CameraClock is the camera's clock record.
func (s *Store) CameraClock(ctx context.Context, serial string) (model.CameraClock, error) {
	var k storage.ClockScan
	err := s.queryRow(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k WHERE k.serial = $1`, args(serial), k.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.CameraClock{}, fmt.Errorf("clock of camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.CameraClock{}, fmt.Errorf("clock of camera %s: %w", serial, err)
	}
	return *k.Clock(), nil
}

// CameraClocks are every camera's clock records, by serial.
func (s *Store) CameraClocks(ctx context.Context) ([]model.CameraClock, error) {
	return s.clocks(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k ORDER BY k.serial`, nil)
}

// clocks reads the clock records query q selects (storage.ClockCols).
func (s *Store) clocks(ctx context.Context, q string, a []any) ([]model.CameraClock, error) {
	var out []model.CameraClock
	err := s.query(ctx, q, a, func(r pgx.Rows) error {
		var k storage.ClockScan
		if err := r.Scan(k.Dest()...); err != nil {
			return err
		}
		out = append(out, *k.Clock())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("camera clocks: %w", err)
	}
	return out, nil
}

// CameraClocksOf are the clock records of the cameras serials names, by
// serial: one query.
func (s *Store) CameraClocksOf(ctx context.Context, serials []string) ([]model.CameraClock, error) {
	if len(serials) > model.MaxPageSize {
		return nil, fmt.Errorf("camera clocks of %d cameras: at most %d at once", len(serials), model.MaxPageSize)
	}
	if len(serials) == 0 {
		return nil, nil
	}
	return s.clocks(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k WHERE k.serial = ANY($1) ORDER BY k.serial`, args(serials))
}
