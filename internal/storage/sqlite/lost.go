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

// lostCols are a camera's report (model.Lost), all NULL when it is not
// lost; lostScan receives them.
const lostCols = `lost_at, lost_by, lost_reason, lost_version`

// lostScan receives lostCols.
type lostScan struct {
	at, version sql.NullInt64
	by, reason  sql.NullString
}

func (l *lostScan) dest() []any { return []any{&l.at, &l.by, &l.reason, &l.version} }

// lost is the report scanned, nil when the camera is not lost.
func (l *lostScan) lost() *model.Lost {
	if !l.at.Valid {
		return nil
	}
	return &model.Lost{At: time.UnixMilli(l.at.Int64).UTC(), By: l.by.String, Reason: l.reason.String, Version: uint64(l.version.Int64)}
}

// killCodes moves the replay record of the camera's codes to version v
// (above every seed it had), with no step used: a code of any older seed
// is refused by acceptStep's rule, in a sign-in that commits after this
// one as in any later. The time of the last accepted code is kept.
const killCodes = `INSERT INTO otp_state (subject, seed_version, last_step, drift, used_at) VALUES (?1, ?2, -1, 0, 0)
	ON CONFLICT(subject) DO UPDATE SET seed_version = max(otp_state.seed_version, excluded.seed_version), last_step = -1,
		drift = 0, resync_offset = NULL, resync_step = NULL`

// ReportLost marks the camera lost, in one commit: the replay record of
// its codes moves past every version it had (a code of its active or
// pending seed is refused from now on, by a sign-in in flight too), a
// wipe is queued as StartOp queues one unless the camera is wiped or being
// wiped, its officer is unassigned and the audit row written. A camera
// reported already changes nothing but the audit row saying so.
func (s *Store) ReportLost(ctx context.Context, serial string, r model.LostReport, challenge []byte, build storage.BuildCommand) (model.LostOutcome, error) {
	var out model.LostOutcome
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		out = model.LostOutcome{}
		c, err := scanCamera(tx.QueryRowContext(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = ?`, serial))
		if errors.Is(err, sql.ErrNoRows) {
			return unchangedError{fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)}
		}
		if err != nil {
			return err
		}
		e := model.AuditEntry{Actor: r.Actor, Action: model.AuditReportLost, Subject: serial, SourceIP: r.SourceIP}
		if c.Lost != nil {
			out.Camera, out.Already, out.WipePending = c, true, c.PendingOp == model.OpWipe
			e.Result, e.Detail = "ok: reported lost already", "first reported by "+c.Lost.By
			return s.appendAudit(ctx, tx, e)
		}
		now := s.now().UnixMilli()
		out.Officer = c.AssignedUser
		lostVersion := max(c.Version, c.PendingVersion)
		switch {
		case c.State == model.StateWiped:
		case c.PendingOp == model.OpWipe:
			out.WipePending = true
		default:
			lostVersion++
			payload, err := build(lostVersion)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE cameras SET state = ?, seed = NULL, seed_at = NULL, pending_op = ?, pending_version = ?,
				pending_seed = NULL, pending_challenge = ?, pending_payload = ?, updated_at = ? WHERE serial = ?`,
				model.StateWiping, model.OpWipe, lostVersion, challenge, payload, now, serial); err != nil {
				return err
			}
			out.Wipe, out.WipePending = lostVersion, true
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cameras SET assigned_user = NULL, lost_at = ?, lost_by = ?, lost_reason = ?, lost_version = ?,
			prev_seed = NULL, prev_until = 0, updated_at = ? WHERE serial = ?`, now, r.Actor, r.Reason, lostVersion, now, serial); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, killCodes, model.CameraSubject(serial), lostVersion); err != nil {
			return err
		}
		e.Result, e.Detail = "ok", out.AuditDetail(r.Reason)
		if err := s.appendAudit(ctx, tx, e); err != nil {
			return err
		}
		out.Camera, err = scanCamera(tx.QueryRowContext(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = ?`, serial))
		return err
	})
	if err != nil {
		return model.LostOutcome{}, fmt.Errorf("report lost: %w", err)
	}
	return out, nil
}

// FoundCamera ends the camera's report and writes e in one commit, when
// model.CanBeFound allows it; its *model.FoundError with ErrConflict
// otherwise.
func (s *Store) FoundCamera(ctx context.Context, serial string, e model.AuditEntry) (model.Camera, error) {
	var out model.Camera
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		c, err := scanCamera(tx.QueryRowContext(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = ?`, serial))
		if errors.Is(err, sql.ErrNoRows) {
			return unchangedError{fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)}
		}
		if err != nil {
			return err
		}
		if err := model.CanBeFound(c); err != nil {
			return unchangedError{fmt.Errorf("%w: %w", err, storage.ErrConflict)}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cameras SET lost_at = NULL, lost_by = NULL, lost_reason = NULL, lost_version = NULL,
			updated_at = ? WHERE serial = ?`, s.now().UnixMilli(), serial); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, e); err != nil {
			return err
		}
		c.Lost = nil
		out = c
		return nil
	})
	if err != nil {
		return model.Camera{}, err
	}
	return out, nil
}

// LostCount is the number of cameras reported lost now.
func (s *Store) LostCount(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras WHERE lost_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count lost cameras: %w", err)
	}
	return n, nil
}
