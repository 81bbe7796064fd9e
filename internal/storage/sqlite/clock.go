package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	found := false
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO camera_clock AS k (serial, seq, offset_ms, rtt_ms, reported_at, drifting_since)
			SELECT ?1, ?2, ?3, ?4, ?5, CASE WHEN ?6 THEN ?5 END WHERE EXISTS (SELECT 1 FROM cameras WHERE serial = ?1)
			ON CONFLICT (serial) DO UPDATE SET seq = excluded.seq, offset_ms = excluded.offset_ms, rtt_ms = excluded.rtt_ms,
				reported_at = excluded.reported_at,
				drifting_since = CASE WHEN ?6 THEN COALESCE(k.drifting_since, excluded.reported_at) END
			WHERE excluded.seq > k.seq
			RETURNING `+storage.ReturnedClockCols,
			r.Serial, int64(r.Seq), r.Offset.Milliseconds(), r.RTT.Milliseconds(), r.At.UnixMilli(), abs > alert).Scan(k.Dest()...)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return model.CameraClock{}, false, fmt.Errorf("clock report of %s: %w", r.Serial, err)
	}
	if !found {
		return model.CameraClock{}, false, nil
	}
	return *k.Clock(), true, nil
}

// ChallengeClock keeps c as the camera's outstanding clock challenge,
// replacing an older one: one upsert.
func (s *Store) ChallengeClock(ctx context.Context, c model.ClockChallenge) error {
	res, err := s.exec(ctx, `INSERT INTO clock_challenges (serial, nonce, sent_at)
		SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM cameras WHERE serial = ?1)
		ON CONFLICT (serial) DO UPDATE SET nonce = excluded.nonce, sent_at = excluded.sent_at`,
		c.Serial, c.Nonce, c.Sent.UnixMilli())
	if err != nil {
		return fmt.Errorf("clock challenge of %s: %w", c.Serial, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("clock challenge of %s: %w", c.Serial, err)
	}
	if n == 0 {
		return fmt.Errorf("clock challenge of %s: %w", c.Serial, storage.ErrNotFound)
	}
	return nil
}

// AnswerClock consumes the camera's outstanding clock challenge when its
// nonce is nonce: one conditional delete. The elapsed time is the store's
// clock's (one process owns the file).
func (s *Store) AnswerClock(ctx context.Context, serial string, nonce []byte) (time.Time, time.Duration, bool, error) {
	var sent int64
	found := false
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM clock_challenges WHERE serial = ? AND nonce = ? RETURNING sent_at`,
			serial, nonce).Scan(&sent)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return time.Time{}, 0, false, fmt.Errorf("clock answer of %s: %w", serial, err)
	}
	if !found {
		return time.Time{}, 0, false, nil
	}
	// One process owns the file: the store's clock is the only one.
	at := time.UnixMilli(sent).UTC()
	return at, s.now().Truncate(time.Millisecond).Sub(at), true, nil
}

// SetClockMismatch flags or clears the camera's clock mismatch in one
// conditional update: only the call that changes it is told so.
func (s *Store) SetClockMismatch(ctx context.Context, serial string, mismatch bool, at time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE camera_clock SET mismatch_since = CASE WHEN ?1 THEN ?2 END
		WHERE serial = ?3 AND (mismatch_since IS NOT NULL) <> ?1`, mismatch, at.UnixMilli(), serial)
	if err != nil {
		return false, fmt.Errorf("clock mismatch of %s: %w", serial, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("clock mismatch of %s: %w", serial, err)
	}
	return n == 1, nil
}

// CameraClock is the camera's clock record.
func (s *Store) CameraClock(ctx context.Context, serial string) (model.CameraClock, error) {
	var k storage.ClockScan
	err := s.queryRow(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k WHERE k.serial = ?`, serial).Scan(k.Dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return model.CameraClock{}, fmt.Errorf("clock of camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.CameraClock{}, fmt.Errorf("clock of camera %s: %w", serial, err)
	}
	return *k.Clock(), nil
}

// CameraClocks are every camera's clock records, by serial.
func (s *Store) CameraClocks(ctx context.Context) ([]model.CameraClock, error) {
	return s.clocks(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k ORDER BY k.serial`)
}

// clocks reads the clock records query q selects (storage.ClockCols).
func (s *Store) clocks(ctx context.Context, q string, args ...any) ([]model.CameraClock, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("camera clocks: %w", err)
	}
	defer rows.Close()
	var out []model.CameraClock
	for rows.Next() {
		var k storage.ClockScan
		if err := rows.Scan(k.Dest()...); err != nil {
			return nil, fmt.Errorf("camera clocks: %w", err)
		}
		out = append(out, *k.Clock())
	}
	if err := rows.Err(); err != nil {
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
	list, err := json.Marshal(serials)
	if err != nil {
		return nil, fmt.Errorf("camera clocks: %w", err)
	}
	return s.clocks(ctx, `SELECT `+storage.ClockCols+` FROM camera_clock k WHERE k.serial IN (SELECT value FROM json_each(?)) ORDER BY k.serial`, string(list))
}
