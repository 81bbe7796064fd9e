package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Setting reads an organisation setting; ok is false when it was never set.
func (s *Store) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = s.queryRow(ctx, `SELECT value FROM org_settings WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", key, err)
	}
	return value, true, nil
}

// SetSetting stores an organisation setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if _, err := s.exec(ctx, `INSERT INTO org_settings (key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("write setting %s: %w", key, err)
	}
	return nil
}

// StartEnrolment keeps seed as the user's app enrolment in progress for
// ttl, replacing any earlier one. It becomes a method only by ConfirmApp.
func (s *Store) StartEnrolment(ctx context.Context, username string, seed device.Seed, ttl time.Duration) error {
	sealed, err := s.seal.SealAppSeed(username, seed)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO enrolments (username, method, secret, expires_at) VALUES (?,?,?,?)
		ON CONFLICT(username, method) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at`,
		username, model.MethodApp, sealed, s.now().Add(ttl).UnixMilli())
	if err != nil {
		return fmt.Errorf("start enrolment of %s: %w", username, err)
	}
	return nil
}

// Enrolment returns the unexpired app enrolment in progress, or ErrNotFound.
func (s *Store) Enrolment(ctx context.Context, username string) (device.Seed, error) {
	var sealed []byte
	err := s.queryRow(ctx, `SELECT secret FROM enrolments WHERE username = ? AND method = ? AND expires_at > ?`,
		username, model.MethodApp, s.now().UnixMilli()).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return device.Seed{}, fmt.Errorf("enrolment of %s: %w", username, storage.ErrNotFound)
	}
	if err != nil {
		return device.Seed{}, fmt.Errorf("read enrolment of %s: %w", username, err)
	}
	return s.seal.OpenAppSeed(username, sealed)
}

// ConfirmApp makes seed the user's authenticator app (replacing an earlier
// one) and ends the enrolment, in one transaction.
func (s *Store) ConfirmApp(ctx context.Context, username string, seed device.Seed) error {
	sealed, err := s.seal.SealAppSeed(username, seed)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mfa_methods (username, method, secret, created_at) VALUES (?,?,?,?)
			ON CONFLICT(username, method) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at`,
			username, model.MethodApp, sealed, s.now().UnixMilli()); err != nil {
			return fmt.Errorf("save app of %s: %w", username, err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM enrolments WHERE username = ? AND method = ?`, username, model.MethodApp)
		return err
	})
}

// AppSeed returns the user's authenticator app seed, or ErrNotFound.
func (s *Store) AppSeed(ctx context.Context, username string) (device.Seed, error) {
	var sealed []byte
	err := s.queryRow(ctx, `SELECT secret FROM mfa_methods WHERE username = ? AND method = ?`, username, model.MethodApp).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return device.Seed{}, fmt.Errorf("app of %s: %w", username, storage.ErrNotFound)
	}
	if err != nil {
		return device.Seed{}, fmt.Errorf("read app of %s: %w", username, err)
	}
	return s.seal.OpenAppSeed(username, sealed)
}

// Methods lists the methods the user registered (not the camera).
func (s *Store) Methods(ctx context.Context, username string) ([]string, error) {
	rows, err := s.query(ctx, `SELECT method FROM mfa_methods WHERE username = ? ORDER BY method`, username)
	if err != nil {
		return nil, fmt.Errorf("methods of %s: %w", username, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("methods of %s: %w", username, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RemoveMethod deletes one registered method; ErrNotFound when absent.
func (s *Store) RemoveMethod(ctx context.Context, username, method string) error {
	res, err := s.exec(ctx, `DELETE FROM mfa_methods WHERE username = ? AND method = ?`, username, method)
	if err != nil {
		return fmt.Errorf("remove %s of %s: %w", method, username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s of %s: %w", method, username, storage.ErrNotFound)
	}
	return nil
}

// ResetMFA deletes the user's registered methods, enrolments, backup codes
// and trusted browsers, in one transaction.
func (s *Store) ResetMFA(ctx context.Context, username string) error {
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		for _, q := range []string{
			`DELETE FROM mfa_methods WHERE username = ?`,
			`DELETE FROM enrolments WHERE username = ?`,
			`DELETE FROM backup_codes WHERE username = ?`,
			`DELETE FROM sent_codes WHERE username = ?`,
			`DELETE FROM tokens WHERE username = ? AND kind = 'trust'`,
			`UPDATE users SET last_method = '' WHERE username = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, username); err != nil {
				return fmt.Errorf("reset MFA of %s: %w", username, err)
			}
		}
		return nil
	})
}

// SetBackupCodes replaces the user's backup codes by these (only their
// keyed hashes are stored).
func (s *Store) SetBackupCodes(ctx context.Context, username string, codes []string) error {
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = s.seal.BackupCodeMAC(username, c)
	}
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM backup_codes WHERE username = ?`, username); err != nil {
			return fmt.Errorf("replace backup codes of %s: %w", username, err)
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO backup_codes (username, hash) VALUES (?, ?)`, username, h); err != nil {
				return fmt.Errorf("replace backup codes of %s: %w", username, err)
			}
		}
		return nil
	})
}

// UseBackupCode marks code used when it is one of the user's unused
// backup codes; false otherwise (wrong, or used before).
func (s *Store) UseBackupCode(ctx context.Context, username, code string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE backup_codes SET used_at = ? WHERE username = ? AND hash = ? AND used_at IS NULL`,
		s.now().UnixMilli(), username, s.seal.BackupCodeMAC(username, code))
	if err != nil {
		return false, fmt.Errorf("use backup code of %s: %w", username, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// BackupCodesLeft counts the user's unused backup codes.
func (s *Store) BackupCodesLeft(ctx context.Context, username string) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM backup_codes WHERE username = ? AND used_at IS NULL`, username).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup codes of %s: %w", username, err)
	}
	return n, nil
}

// SetLastMethod records the method the user just signed in with.
func (s *Store) SetLastMethod(ctx context.Context, username, method string) error {
	_, err := s.exec(ctx, `UPDATE users SET last_method = ? WHERE username = ?`, method, username)
	return err
}

// PutSentCode records code as the one live code of (username, purpose),
// valid for ttl: an earlier one dies.
func (s *Store) PutSentCode(ctx context.Context, username, purpose, code string, ttl time.Duration) error {
	now := s.now()
	_, err := s.exec(ctx, `INSERT INTO sent_codes (username, purpose, hash, expires_at, sent_at) VALUES (?,?,?,?,?)
		ON CONFLICT(username, purpose) DO UPDATE SET hash = excluded.hash, expires_at = excluded.expires_at, sent_at = excluded.sent_at`,
		username, purpose, s.seal.SentCodeMAC(username, purpose, code), now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("record sent code: %w", err)
	}
	return nil
}

// UseSentCode consumes the live code of (username, purpose) when code
// matches and has not expired; false otherwise. A code works once.
func (s *Store) UseSentCode(ctx context.Context, username, purpose, code string) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM sent_codes WHERE username = ? AND purpose = ? AND hash = ? AND expires_at > ?`,
		username, purpose, s.seal.SentCodeMAC(username, purpose, code), s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("use sent code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// StartPhoneEnrolment keeps phone as the user's phone being confirmed.
func (s *Store) StartPhoneEnrolment(ctx context.Context, username, phone string, ttl time.Duration) error {
	_, err := s.exec(ctx, `INSERT INTO enrolments (username, method, phone, expires_at) VALUES (?,?,?,?)
		ON CONFLICT(username, method) DO UPDATE SET phone = excluded.phone, expires_at = excluded.expires_at`,
		username, model.MethodPhone, phone, s.now().Add(ttl).UnixMilli())
	if err != nil {
		return fmt.Errorf("start phone enrolment of %s: %w", username, err)
	}
	return nil
}

// PhoneEnrolment returns the phone number being confirmed, or ErrNotFound.
func (s *Store) PhoneEnrolment(ctx context.Context, username string) (string, error) {
	var phone string
	err := s.queryRow(ctx, `SELECT phone FROM enrolments WHERE username = ? AND method = ? AND expires_at > ?`,
		username, model.MethodPhone, s.now().UnixMilli()).Scan(&phone)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("phone enrolment of %s: %w", username, storage.ErrNotFound)
	}
	return phone, err
}

// ConfirmPhone makes phone the user's phone method and ends the enrolment.
func (s *Store) ConfirmPhone(ctx context.Context, username, phone string) error {
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mfa_methods (username, method, phone, created_at) VALUES (?,?,?,?)
			ON CONFLICT(username, method) DO UPDATE SET phone = excluded.phone, created_at = excluded.created_at`,
			username, model.MethodPhone, phone, s.now().UnixMilli()); err != nil {
			return fmt.Errorf("save phone of %s: %w", username, err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM enrolments WHERE username = ? AND method = ?`, username, model.MethodPhone)
		return err
	})
}

// Phone returns the user's confirmed phone number, or ErrNotFound.
func (s *Store) Phone(ctx context.Context, username string) (string, error) {
	var phone string
	err := s.queryRow(ctx, `SELECT phone FROM mfa_methods WHERE username = ? AND method = ?`, username, model.MethodPhone).Scan(&phone)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("phone of %s: %w", username, storage.ErrNotFound)
	}
	return phone, err
}

// AddOutbox stores a message in the development outbox.
func (s *Store) AddOutbox(ctx context.Context, m model.OutboxMessage) error {
	_, err := s.exec(ctx, `INSERT INTO outbox (at, channel, address, subject, body) VALUES (?,?,?,?,?)`,
		s.now().UnixMilli(), m.Channel, m.Address, m.Subject, m.Body)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Outbox returns the newest messages first.
func (s *Store) Outbox(ctx context.Context, limit int) ([]model.OutboxMessage, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	rows, err := s.query(ctx, `SELECT id, at, channel, address, subject, body FROM outbox ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	out := []model.OutboxMessage{}
	for rows.Next() {
		var m model.OutboxMessage
		var at int64
		if err := rows.Scan(&m.ID, &at, &m.Channel, &m.Address, &m.Subject, &m.Body); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		m.At = time.UnixMilli(at).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
