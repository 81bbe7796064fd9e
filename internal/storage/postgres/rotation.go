package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// rotationKeep is how long the hourly counts of scheduled rotations are
// kept.
const rotationKeep = 48 * time.Hour

// ClaimRotations stamps and returns the cameras whose scheduled rotation
// may start now, within what c.Allowed leaves of c.Hour (see
// storage.Rotations). The hour's row is locked first (FOR UPDATE), so
// nodes claiming in the same hour take turns and their sum never passes
// c.Allowed; the cameras are chosen and locked in one conditional update
// (FOR UPDATE SKIP LOCKED, re-checked on their latest version), so no
// camera is claimed twice.
func (s *Store) ClaimRotations(ctx context.Context, c model.RotationClaim) ([]string, error) {
	var out []string
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = out[:0]
		hour := c.Hour.UnixMilli()
		if _, err := tx.Exec(ctx, `INSERT INTO rotation_hours (hour, started) VALUES ($1, 0) ON CONFLICT (hour) DO NOTHING`, hour); err != nil {
			return err
		}
		var started int
		if err := tx.QueryRow(ctx, `SELECT started FROM rotation_hours WHERE hour = $1 FOR UPDATE`, hour).Scan(&started); err != nil {
			return err
		}
		room := c.Allowed - started
		if room <= 0 {
			return nil
		}
		// The candidates are a CTE: PostgreSQL runs it once, where a
		// subquery under IN may be run again per row and pass its LIMIT.
		rows, err := tx.Query(ctx, `WITH pick AS (SELECT serial FROM cameras WHERE state = $2 AND pending_op IS NULL AND online
			 AND seed IS NOT NULL AND seed_at <= $3 AND rotation_at <= $4 ORDER BY seed_at, serial LIMIT $5 FOR UPDATE SKIP LOCKED)
			UPDATE cameras c SET rotation_at = $1 FROM pick WHERE c.serial = pick.serial
			AND c.state = $2 AND c.pending_op IS NULL AND c.online AND c.seed_at <= $3 AND c.rotation_at <= $4
			RETURNING c.serial`, c.Now.UnixMilli(), string(model.StateProvisioned), c.DueBefore.UnixMilli(), c.LeaseBefore.UnixMilli(), room)
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
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE rotation_hours SET started = started + $2 WHERE hour = $1`, hour, len(out)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM rotation_hours WHERE hour < $1`, c.Hour.Add(-rotationKeep).UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim rotations: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// RotationCounts counts the fleet and its due, overdue and rotating
// cameras, and the scheduled rotations started in hour.
func (s *Store) RotationCounts(ctx context.Context, dueBefore, overdueBefore, hour time.Time) (model.RotationCounts, error) {
	var n model.RotationCounts
	err := s.queryRow(ctx, `SELECT
			COUNT(*)::int,
			COUNT(*) FILTER (WHERE pending_op IS NULL AND seed_at <= $2)::int,
			COUNT(*) FILTER (WHERE pending_op IS NULL AND seed_at <= $3)::int,
			COUNT(*) FILTER (WHERE pending_op = $4)::int,
			COALESCE((SELECT started FROM rotation_hours WHERE hour = $5), 0)::int
		FROM cameras WHERE state = $1 AND seed IS NOT NULL`,
		args(string(model.StateProvisioned), dueBefore.UnixMilli(), overdueBefore.UnixMilli(), string(model.OpRotate), hour.UnixMilli()),
		&n.Fleet, &n.Due, &n.Overdue, &n.Rotating, &n.Started)
	if err != nil {
		return model.RotationCounts{}, fmt.Errorf("count rotations: %w", err)
	}
	return n, nil
}

// proveRotation completes in tx the pending rotation of camera serial to
// version, proven by a code of its new seed that the same transaction
// accepts, and returns its audit row for the transaction to append with
// its own (one chain head per transaction: two, taken in any order, could
// deadlock two transactions). A rotation completed already (its ack won)
// is fine (no row); a seed that is neither pending nor active any more (a
// newer rotation replaced it) refuses the code with ErrStepUsed.
func (s *Store) proveRotation(ctx context.Context, tx pgx.Tx, serial string, version uint64, now time.Time) ([]model.AuditEntry, error) {
	tag, err := tx.Exec(ctx, `UPDATE cameras SET version = $1, prev_seed = seed, prev_until = $6, seed = pending_seed, seed_at = $2,
		pending_op = NULL, pending_version = NULL, pending_seed = NULL, pending_challenge = NULL, pending_payload = NULL, updated_at = $2
		WHERE serial = $3 AND state = $4 AND pending_op = $5 AND pending_version = $1`,
		version, now.UnixMilli(), serial, string(model.StateProvisioned), string(model.OpRotate), now.Add(model.RotationGrace).UnixMilli())
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 1 {
		return []model.AuditEntry{{At: now, Actor: "camera:" + serial, Action: "rotate.proof", Subject: serial, Result: "ok",
			Detail: fmt.Sprintf("version %d, proven by a sign-in code", version)}}, nil
	}
	var active uint64
	var state string
	if err := tx.QueryRow(ctx, `SELECT version, state FROM cameras WHERE serial = $1`, serial).Scan(&active, &state); err != nil {
		return nil, err
	}
	if active != version || model.CameraState(state) != model.StateProvisioned {
		return nil, fmt.Errorf("seed version %d of %s is no longer pending: %w", version, serial, storage.ErrStepUsed)
	}
	return nil, nil
}
