package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ImportCameras registers every camera of cams provisioned with its seed
// active at version 1, in one transaction: all or none. The first camera
// that cannot be added is an *model.ImportError (ErrExists for a serial
// known already or given twice).
func (s *Store) ImportCameras(ctx context.Context, cams []model.SeededCamera) error {
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
		return nil
	})
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
