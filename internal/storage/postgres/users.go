package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// newSubject is a user's random OpenID Connect subject: 32 lowercase hex
// digits, as sqlite makes it.
func newSubject() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// AddUser creates a user with an already hashed password; the role is
// model.ParseRole's ("" and "user": officer). ErrExists for a duplicate
// username.
func (s *Store) AddUser(ctx context.Context, u model.User, passwordHash string) error {
	role, err := model.ParseRole(u.Role)
	if err != nil {
		return fmt.Errorf("add user %s: %w", u.Username, err)
	}
	u.Role = string(role)
	sub, err := newSubject()
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO users (username, email, phone, password_hash, role, created_at, subject)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		u.Username, u.Email, u.Phone, passwordHash, u.Role, s.now().UnixMilli(), sub)
	if isUnique(err) {
		return fmt.Errorf("user %s: %w", u.Username, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", u.Username, err)
	}
	return nil
}

const userCols = `u.username, u.email, u.phone, u.role, COALESCE(c.serial, ''), u.created_at, u.last_method, COALESCE(u.subject, '')`

const userFrom = ` FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username`

// scanUser scans userCols, then extra columns into extra.
func scanUser(row pgx.Row, extra ...any) (model.User, error) {
	var u model.User
	var created int64
	dest := append([]any{&u.Username, &u.Email, &u.Phone, &u.Role, &u.Camera, &created, &u.LastMethod, &u.Subject}, extra...)
	if err := row.Scan(dest...); err != nil {
		return model.User{}, err
	}
	u.CreatedAt = utc(created)
	return u, nil
}

// Users lists every user by username.
func (s *Store) Users(ctx context.Context) ([]model.User, error) {
	var out []model.User
	err := s.query(ctx, `SELECT `+userCols+userFrom+` ORDER BY u.username`, nil, func(r pgx.Rows) error {
		u, err := scanUser(r)
		out = append(out, u)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// userRow reads one user matching where (with arg), with extra columns.
func (s *Store) userRow(ctx context.Context, where string, arg any, extraCols string, extra ...any) (model.User, error) {
	var u model.User
	err := s.row(ctx, `SELECT `+userCols+extraCols+userFrom+` WHERE `+where, args(arg), func(r pgx.Row) error {
		var err error
		u, err = scanUser(r, extra...)
		return err
	})
	return u, err
}

// User returns one user and the password hash.
func (s *Store) User(ctx context.Context, username string) (model.User, string, error) {
	var hash string
	u, err := s.userRow(ctx, `u.username = $1`, username, `, u.password_hash`, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.User{}, "", fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	if err != nil {
		return model.User{}, "", fmt.Errorf("read user %s: %w", username, err)
	}
	return u, hash, nil
}

// SetPassword replaces a user's password hash.
func (s *Store) SetPassword(ctx context.Context, username, hash string) error {
	tag, err := s.exec(ctx, `UPDATE users SET password_hash = $1 WHERE username = $2`, hash, username)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	return nil
}

// UserBySubject returns the user whose Subject is sub.
func (s *Store) UserBySubject(ctx context.Context, sub string) (model.User, error) {
	u, err := s.userRow(ctx, `u.subject = $1`, sub, "")
	if errors.Is(err, pgx.ErrNoRows) {
		return model.User{}, fmt.Errorf("user with subject %s: %w", sub, storage.ErrNotFound)
	}
	if err != nil {
		return model.User{}, fmt.Errorf("read user by subject: %w", err)
	}
	return u, nil
}

// SetLastMethod records the method the user just signed in with.
func (s *Store) SetLastMethod(ctx context.Context, username, method string) error {
	if _, err := s.exec(ctx, `UPDATE users SET last_method = $1 WHERE username = $2`, method, username); err != nil {
		return fmt.Errorf("set last method of %s: %w", username, err)
	}
	return nil
}
