package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ImportCameras registers every camera of cams provisioned with its seed
// active at version 1 and appends audit, in one transaction: all or none.
// The first camera that cannot be added is an *model.ImportError
// (ErrExists for a serial known already or given twice).
func (s *Store) ImportCameras(ctx context.Context, cams []model.SeededCamera, audit []model.AuditEntry) error {
	if len(cams) == 0 {
		return nil
	}
	sealed := make([][]byte, len(cams))
	for i, c := range cams {
		seed := c.Seed
		seed.Version = 1
		b, err := s.seal.SealCameraSeed(c.Serial, seed)
		if err != nil {
			return &model.ImportError{Index: i, Err: fmt.Errorf("camera %s: %w", c.Serial, err)}
		}
		sealed[i] = b
	}
	now := s.now().UnixMilli()
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		for i, c := range cams {
			_, err := tx.ExecContext(ctx, `INSERT INTO cameras (serial, model, public_key, state, version, seed, seed_at, created_at, updated_at)
				VALUES (?,?,?,?,1,?,?,?,?)`, c.Serial, c.Model, c.PublicKey, model.StateProvisioned, sealed[i], now, now, now)
			if isUnique(err) {
				return &model.ImportError{Index: i, Err: fmt.Errorf("camera %s: %w", c.Serial, storage.ErrExists)}
			}
			if err != nil {
				return &model.ImportError{Index: i, Err: fmt.Errorf("import camera %s: %w", c.Serial, err)}
			}
		}
		return s.auditAll(ctx, tx, audit)
	})
}

// auditAll appends audit in tx.
func (s *Store) auditAll(ctx context.Context, tx *wtx, audit []model.AuditEntry) error {
	for _, e := range audit {
		if err := s.appendAudit(ctx, tx, e); err != nil {
			return fmt.Errorf("write audit: %w", err)
		}
	}
	return nil
}

// sealedRow scans cameraCols and then the sealed seed.
type sealedRow struct {
	rows   *sql.Rows
	sealed *[]byte
}

func (r sealedRow) Scan(dest ...any) error { return r.rows.Scan(append(dest, r.sealed)...) }

// ExportSeeds reads the cameras serials with their active seeds, in that
// order, and appends audit, in one transaction: ErrNotFound for an
// unknown serial, ErrConflict for a camera with no active seed (nothing
// appended then).
func (s *Store) ExportSeeds(ctx context.Context, serials []string, audit []model.AuditEntry) ([]model.CameraSeed, error) {
	list, err := json.Marshal(serials)
	if err != nil {
		return nil, err
	}
	var out []model.CameraSeed
	err = s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+cameraCols+`, seed FROM cameras WHERE serial IN (SELECT value FROM json_each(?))`, string(list))
		if err != nil {
			return fmt.Errorf("read seeds: %w", err)
		}
		type found struct {
			cam    model.Camera
			sealed []byte
		}
		bySerial := map[string]found{}
		for rows.Next() {
			var f found
			if f.cam, err = scanCamera(sealedRow{rows, &f.sealed}); err != nil {
				rows.Close()
				return fmt.Errorf("read seeds: %w", err)
			}
			bySerial[f.cam.Serial] = f
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read seeds: %w", err)
		}
		for _, sn := range serials {
			f, ok := bySerial[sn]
			switch {
			case !ok:
				return fmt.Errorf("camera %s: %w", sn, storage.ErrNotFound)
			case f.cam.State != model.StateProvisioned || f.sealed == nil:
				return fmt.Errorf("camera %s has no active seed (state %s): %w", sn, f.cam.State, storage.ErrConflict)
			}
			seed, err := s.seal.OpenCameraSeed(sn, f.sealed)
			if err != nil {
				return err
			}
			out = append(out, model.CameraSeed{Camera: f.cam, Seed: seed})
		}
		return s.auditAll(ctx, tx, audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetCameraKey registers the public key of a camera that has none;
// ErrConflict when it has one, ErrNotFound when unknown.
func (s *Store) SetCameraKey(ctx context.Context, serial, publicKey string) error {
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE cameras SET public_key = ?, updated_at = ? WHERE serial = ? AND public_key = ''`,
			publicKey, s.now().UnixMilli(), serial)
		if err != nil {
			return fmt.Errorf("set key of camera %s: %w", serial, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM cameras WHERE serial = ?`, serial).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set key of camera %s: %w", serial, err)
		}
		return fmt.Errorf("camera %s has an identity key already: %w", serial, storage.ErrConflict)
	})
}
