package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// rotationKeep is how long the hourly counts of scheduled rotations are
// kept.
const rotationKeep = 48 * time.Hour

// ClaimRotations stamps and returns the cameras whose scheduled rotation
// may start now, within what c.Allowed leaves of c.Hour (see
// storage.Rotations). The writer runs one transaction at a time, so claims
// never overlap.
func (s *Store) ClaimRotations(ctx context.Context, c model.RotationClaim) ([]string, error) {
	var out []string
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		out = out[:0]
		hour := c.Hour.UnixMilli()
		var started int
		err := tx.QueryRowContext(ctx, `SELECT started FROM rotation_hours WHERE hour = ?`, hour).Scan(&started)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		room := c.Allowed - started
		if room <= 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `UPDATE cameras SET rotation_at = ?1 WHERE serial IN
			(SELECT serial FROM cameras WHERE state = ?2 AND pending_op IS NULL AND online <> 0 AND seed IS NOT NULL
			 AND seed_at <= ?3 AND rotation_at <= ?4 ORDER BY seed_at, serial LIMIT ?5)
			RETURNING serial`, c.Now.UnixMilli(), model.StateProvisioned, c.DueBefore.UnixMilli(), c.LeaseBefore.UnixMilli(), room)
		if err != nil {
			return err
		}
		for rows.Next() {
			var sn string
			if err := rows.Scan(&sn); err != nil {
				rows.Close()
				return err
			}
			out = append(out, sn)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rotation_hours (hour, started) VALUES (?1, ?2)
			ON CONFLICT(hour) DO UPDATE SET started = started + excluded.started`, hour, len(out)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM rotation_hours WHERE hour < ?`, c.Hour.Add(-rotationKeep).UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim rotations: %w", err)
	}
	return out, nil
}

// RotationCounts counts the fleet and its due, overdue and rotating
// cameras, and the scheduled rotations started in hour.
func (s *Store) RotationCounts(ctx context.Context, dueBefore, overdueBefore, hour time.Time) (model.RotationCounts, error) {
	var n model.RotationCounts
	err := s.queryRow(ctx, `SELECT
			COUNT(*),
			COALESCE(SUM(CASE WHEN pending_op IS NULL AND seed_at <= ?2 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN pending_op IS NULL AND seed_at <= ?3 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN pending_op = ?4 THEN 1 ELSE 0 END), 0),
			COALESCE((SELECT started FROM rotation_hours WHERE hour = ?5), 0)
		FROM cameras WHERE state = ?1 AND seed IS NOT NULL`,
		model.StateProvisioned, dueBefore.UnixMilli(), overdueBefore.UnixMilli(), model.OpRotate, hour.UnixMilli()).
		Scan(&n.Fleet, &n.Due, &n.Overdue, &n.Rotating, &n.Started)
	if err != nil {
		return model.RotationCounts{}, fmt.Errorf("count rotations: %w", err)
	}
	return n, nil
}

// proveRotation completes in tx the pending rotation of camera serial to
// version, proven by a code of its new seed that the same commit accepts
// (u), and audits it. A rotation completed already (its ack won) is
// fine; a seed that is neither pending nor active any more (a newer
// rotation replaced it) refuses the code with ErrStepUsed.
func (s *Store) proveRotation(ctx context.Context, tx *wtx, serial string, version uint64, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE cameras SET version = ?1, prev_seed = seed, prev_until = ?6, seed = pending_seed, seed_at = ?2,
		pending_op = NULL, pending_version = NULL, pending_seed = NULL, pending_challenge = NULL, pending_payload = NULL, updated_at = ?2
		WHERE serial = ?3 AND state = ?4 AND pending_op = ?5 AND pending_version = ?1`,
		version, now.UnixMilli(), serial, model.StateProvisioned, model.OpRotate, now.Add(model.RotationGrace).UnixMilli())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return s.appendAudit(ctx, tx, model.AuditEntry{At: now, Actor: "camera:" + serial,
			Action: "rotate.proof", Subject: serial, Result: "ok", Detail: fmt.Sprintf("version %d, proven by a sign-in code", version)})
	}
	var active uint64
	var state model.CameraState
	if err := tx.QueryRowContext(ctx, `SELECT version, state FROM cameras WHERE serial = ?`, serial).Scan(&active, &state); err != nil {
		return err
	}
	if active != version || state != model.StateProvisioned {
		return fmt.Errorf("seed version %d of %s is no longer pending: %w", version, serial, storage.ErrStepUsed)
	}
	return nil
}
