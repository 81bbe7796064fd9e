package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// User is an account (no password hash).
type User struct {
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone,omitempty"`
	Role      string    `json:"role"`
	Camera    string    `json:"camera,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// LastMethod is the MFA method the user last signed in with ("" when none).
	LastMethod string `json:"lastMethod,omitempty"`
	// Subject is the user's stable random identifier towards OpenID
	// Connect clients (the ID token's sub), never the username.
	Subject string `json:"subject,omitempty"`
}

// AddUser creates a user with an already hashed password. ErrExists for a
// duplicate username.
func (s *Store) AddUser(ctx context.Context, u User, passwordHash string) error {
	if u.Role == "" {
		u.Role = "user"
	}
	_, err := s.exec(ctx, `INSERT INTO users (username, email, phone, password_hash, role, created_at, subject)
		VALUES (?,?,?,?,?,?, lower(hex(randomblob(16))))`,
		u.Username, u.Email, u.Phone, passwordHash, u.Role, s.now().UnixMilli())
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("user %s: %w", u.Username, ErrExists)
		}
		return fmt.Errorf("add user %s: %w", u.Username, err)
	}
	return nil
}

const userCols = `u.username, u.email, u.phone, u.role, COALESCE(c.serial, ''), u.created_at, u.last_method, COALESCE(u.subject, '')`

// scanUser scans userCols, then extra columns into extra.
func scanUser(row interface{ Scan(...any) error }, extra ...any) (User, error) {
	var u User
	var created int64
	dest := append([]any{&u.Username, &u.Email, &u.Phone, &u.Role, &u.Camera, &created, &u.LastMethod, &u.Subject}, extra...)
	if err := row.Scan(dest...); err != nil {
		return User{}, err
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	return u, nil
}

// Users lists every user by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.query(ctx, `SELECT `+userCols+` FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username ORDER BY u.username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
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
func (s *Store) User(ctx context.Context, username string) (User, string, error) {
	var hash string
	row := s.queryRow(ctx, `SELECT `+userCols+`, u.password_hash FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username WHERE u.username = ?`, username)
	u, err := scanUser(row, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", fmt.Errorf("user %s: %w", username, ErrNotFound)
	}
	if err != nil {
		return User{}, "", fmt.Errorf("read user %s: %w", username, err)
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
		return fmt.Errorf("user %s: %w", username, ErrNotFound)
	}
	return nil
}

// UserBySubject returns the user whose Subject is sub.
func (s *Store) UserBySubject(ctx context.Context, sub string) (User, error) {
	row := s.queryRow(ctx, `SELECT `+userCols+` FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username WHERE u.subject = ?`, sub)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user with subject %s: %w", sub, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user by subject: %w", err)
	}
	return u, nil
}
