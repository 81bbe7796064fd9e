package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ImportCameras registers every camera of cams provisioned with its seed
// active at version 1, in one transaction (the inserts sent as one
// batch): all or none. The first camera that cannot be added is an
// *model.ImportError (ErrExists for a serial known already or given
// twice).
func (s *Store) ImportCameras(ctx context.Context, cams []model.SeededCamera) error {
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
		return br.Close()
	})
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
