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

// AddUser creates a user with an already hashed password; the role is
// model.ParseRole's ("" and "user": officer). ErrExists for a duplicate
// username.
func (s *Store) AddUser(ctx context.Context, u model.User, passwordHash string) error {
	role, err := model.ParseRole(u.Role)
	if err != nil {
		return fmt.Errorf("add user %s: %w", u.Username, err)
	}
	u.Role = string(role)
	_, err = s.exec(ctx, `INSERT INTO users (username, email, phone, password_hash, role, created_at, subject)
		VALUES (?,?,?,?,?,?, lower(hex(randomblob(16))))`,
		u.Username, u.Email, u.Phone, passwordHash, u.Role, s.now().UnixMilli())
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("user %s: %w", u.Username, storage.ErrExists)
		}
		return fmt.Errorf("add user %s: %w", u.Username, err)
	}
	return nil
}

const userCols = `u.username, u.email, u.phone, u.role, COALESCE(c.serial, ''), u.created_at, u.last_method, COALESCE(u.subject, '')`

// scanUser scans userCols, then extra columns into extra.
func scanUser(row interface{ Scan(...any) error }, extra ...any) (model.User, error) {
	var u model.User
	var created int64
	dest := append([]any{&u.Username, &u.Email, &u.Phone, &u.Role, &u.Camera, &created, &u.LastMethod, &u.Subject}, extra...)
	if err := row.Scan(dest...); err != nil {
		return model.User{}, err
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	return u, nil
}

// Users lists every user by username.
func (s *Store) Users(ctx context.Context) ([]model.User, error) {
	rows, err := s.query(ctx, `SELECT `+userCols+` FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username ORDER BY u.username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []model.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// User returns one user and the password hash.
func (s *Store) User(ctx context.Context, username string) (model.User, string, error) {
	var hash string
	row := s.queryRow(ctx, `SELECT `+userCols+`, u.password_hash FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username WHERE u.username = ?`, username)
	u, err := scanUser(row, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return model.User{}, "", fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	if err != nil {
		return model.User{}, "", fmt.Errorf("read user %s: %w", username, err)
	}
	return u, hash, nil
}

// SetPassword replaces a user's password hash.
func (s *Store) SetPassword(ctx context.Context, username, hash string) error {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = ? WHERE username = ?`, hash, username)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	return nil
}

// UserBySubject returns the user whose Subject is sub.
func (s *Store) UserBySubject(ctx context.Context, sub string) (model.User, error) {
	row := s.queryRow(ctx, `SELECT `+userCols+` FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username WHERE u.subject = ?`, sub)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return model.User{}, fmt.Errorf("user with subject %s: %w", sub, storage.ErrNotFound)
	}
	if err != nil {
		return model.User{}, fmt.Errorf("read user by subject: %w", err)
	}
	return u, nil
}
