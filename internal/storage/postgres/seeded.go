package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ImportCameras registers every camera of cams provisioned with its seed
// active at version 1 and appends audit, in one transaction (the inserts
// sent as one batch): all or none. The first camera that cannot be added
// is an *model.ImportError (ErrExists for a serial known already or given
// twice).
func (s *Store) ImportCameras(ctx context.Context, cams []model.SeededCamera, audit []model.AuditEntry) error {
	if len(cams) == 0 {
		return nil
	}
	sealed := make([][]byte, len(cams))
	for i, c := range cams {
		if !storable([]any{c.Serial, string(c.Model), c.PublicKey}) {
			return &model.ImportError{Index: i, Err: fmt.Errorf("camera %q: %w", c.Serial, errUnstorable)}
		}
		seed := c.Seed
		seed.Version = 1
		b, err := s.seal.SealCameraSeed(c.Serial, seed)
		if err != nil {
			return &model.ImportError{Index: i, Err: fmt.Errorf("camera %s: %w", c.Serial, err)}
		}
		sealed[i] = b
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		now := s.now().UnixMilli()
		b := &pgx.Batch{}
		for i, c := range cams {
			b.Queue(`INSERT INTO cameras (serial, model, public_key, state, version, seed, seed_at, created_at, updated_at)
				VALUES ($1,$2,$3,$4,1,$5,$6,$6,$6)`, c.Serial, string(c.Model), c.PublicKey, string(model.StateProvisioned), sealed[i], now)
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for i, c := range cams {
			_, err := br.Exec()
			if isUnique(err) {
				return &model.ImportError{Index: i, Err: fmt.Errorf("camera %s: %w", c.Serial, storage.ErrExists)}
			}
			if err != nil {
				return &model.ImportError{Index: i, Err: fmt.Errorf("import camera %s: %w", c.Serial, err)}
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		if err := s.appendAudits(ctx, tx, audit); err != nil {
			return fmt.Errorf("write audit: %w", err)
		}
		return nil
	})
}

// ExportSeeds reads the cameras serials with their active seeds, in that
// order, and appends audit, in one transaction: ErrNotFound for an
// unknown serial, ErrConflict for a camera with no active seed (nothing
// appended then).
func (s *Store) ExportSeeds(ctx context.Context, serials []string, audit []model.AuditEntry) ([]model.CameraSeed, error) {
	if !storable(anySlice(serials)) {
		return nil, fmt.Errorf("export: %w", storage.ErrNotFound)
	}
	var out []model.CameraSeed
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `SELECT `+cameraCols+`, seed FROM cameras WHERE serial = ANY($1)`, serials)
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
		rows.Close()
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
		if len(audit) == 0 {
			return nil
		}
		return s.appendAudits(ctx, tx, audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sealedRow scans cameraCols and then the sealed seed.
type sealedRow struct {
	rows   pgx.Rows
	sealed *[]byte
}

func (r sealedRow) Scan(dest ...any) error { return r.rows.Scan(append(dest, r.sealed)...) }

// anySlice is ss as arguments for storable.
func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// SetCameraKey registers the public key of a camera that has none;
// ErrConflict when it has one, ErrNotFound when unknown.
func (s *Store) SetCameraKey(ctx context.Context, serial, publicKey string) error {
	if !storable([]any{publicKey}) {
		return fmt.Errorf("key of camera %s: %w", serial, errUnstorable)
	}
	tag, err := s.exec(ctx, `UPDATE cameras SET public_key = $1, updated_at = $2 WHERE serial = $3 AND public_key = ''`,
		publicKey, s.now().UnixMilli(), serial)
	if err != nil {
		return fmt.Errorf("set key of camera %s: %w", serial, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.Camera(ctx, serial); err != nil {
		return err
	}
	return fmt.Errorf("camera %s has an identity key already: %w", serial, storage.ErrConflict)
}
