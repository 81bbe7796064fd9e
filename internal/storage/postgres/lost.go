package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// lostCols are a camera's report (model.Lost), all NULL when it is not
// lost; lostScan receives them.
const lostCols = `lost_at, lost_by, lost_reason, lost_version`

// lostScan receives lostCols.
type lostScan struct {
	at, version *int64
	by, reason  *string
}

func (l *lostScan) dest() []any { return []any{&l.at, &l.by, &l.reason, &l.version} }

// lost is the report scanned, nil when the camera is not lost.
func (l *lostScan) lost() *model.Lost {
	if l.at == nil {
		return nil
	}
	out := &model.Lost{At: utc(*l.at)}
	if l.by != nil {
		out.By = *l.by
	}
	if l.reason != nil {
		out.Reason = *l.reason
	}
	if l.version != nil {
		out.Version = uint64(*l.version)
	}
	return out
}

// killCodes moves the replay record of the camera's codes to version $2
// (above every seed it had), with no step used: a code of any older seed
// is refused by acceptStep's rule, in a sign-in that commits after this
// one as in any later (PostgreSQL makes the two upserts of one row wait
// for each other). The time of the last accepted code is kept.
const killCodes = `INSERT INTO otp_state (subject, seed_version, last_step, drift, used_at) VALUES ($1, $2, -1, 0, 0)
	ON CONFLICT (subject) DO UPDATE SET seed_version = GREATEST(otp_state.seed_version, excluded.seed_version), last_step = -1,
		drift = 0, resync_offset = NULL, resync_step = NULL`

// ReportLost marks the camera lost, in one commit (see sqlite's): the
// camera's row is locked for the transaction, so a report, a found and an
// assignment of one camera happen one after another.
func (s *Store) ReportLost(ctx context.Context, serial string, r model.LostReport, challenge []byte, build storage.BuildCommand) (model.LostOutcome, error) {
	if !storable([]any{serial, r.Actor, r.Reason, r.SourceIP}) {
		return model.LostOutcome{}, fmt.Errorf("report lost: camera %s: %w", serial, storage.ErrNotFound)
	}
	var out model.LostOutcome
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = model.LostOutcome{}
		c, err := scanCamera(tx.QueryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = $1 FOR UPDATE`, serial))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
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
			if _, err := tx.Exec(ctx, `UPDATE cameras SET state = $1, seed = NULL, seed_at = NULL, pending_op = $2, pending_version = $3,
				pending_seed = NULL, pending_challenge = $4, pending_payload = $5, updated_at = $6 WHERE serial = $7`,
				string(model.StateWiping), string(model.OpWipe), lostVersion, challenge, payload, now, serial); err != nil {
				return err
			}
			out.Wipe, out.WipePending = lostVersion, true
		}
		if _, err := tx.Exec(ctx, `UPDATE cameras SET assigned_user = NULL, lost_at = $1, lost_by = $2, lost_reason = $3, lost_version = $4,
			prev_seed = NULL, prev_until = 0, updated_at = $1 WHERE serial = $5`, now, r.Actor, r.Reason, lostVersion, serial); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, killCodes, model.CameraSubject(serial), lostVersion); err != nil {
			return err
		}
		e.Result, e.Detail = "ok", out.AuditDetail(r.Reason)
		if err := s.appendAudit(ctx, tx, e); err != nil {
			return err
		}
		out.Camera, err = scanCamera(tx.QueryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = $1`, serial))
		return err
	})
	if err != nil {
		return model.LostOutcome{}, fmt.Errorf("report lost: %w", err)
	}
	return out, nil
}

// FoundCamera ends the camera's report and writes e in one commit, when
// model.CanBeFound allows it; its *model.FoundError with ErrConflict
// otherwise. The row is locked as ReportLost locks it.
func (s *Store) FoundCamera(ctx context.Context, serial string, e model.AuditEntry) (model.Camera, error) {
	if !storable([]any{serial}) {
		return model.Camera{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	var out model.Camera
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		c, err := scanCamera(tx.QueryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = $1 FOR UPDATE`, serial))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := model.CanBeFound(c); err != nil {
			return fmt.Errorf("%w: %w", err, storage.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE cameras SET lost_at = NULL, lost_by = NULL, lost_reason = NULL, lost_version = NULL,
			updated_at = $1 WHERE serial = $2`, s.now().UnixMilli(), serial); err != nil {
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
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras WHERE lost_at IS NOT NULL`, nil, &n); err != nil {
		return 0, fmt.Errorf("count lost cameras: %w", err)
	}
	return n, nil
}
