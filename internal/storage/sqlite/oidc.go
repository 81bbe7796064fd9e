package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// AddOIDCClient registers c; ErrExists when its ID is taken.
func (s *Store) AddOIDCClient(ctx context.Context, c model.OIDCClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("add oidc client %s: %w", c.ID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO oidc_clients (id, secret_hash, public, redirect_uris, created_at) VALUES (?,?,?,?,?)`,
		c.ID, c.SecretHash, c.Public, string(uris), s.now().UnixMilli())
	if isUnique(err) {
		return fmt.Errorf("oidc client %s: %w", c.ID, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add oidc client %s: %w", c.ID, err)
	}
	return nil
}

const oidcClientCols = `id, secret_hash, public, redirect_uris, created_at`

func scanOIDCClient(row scanner) (model.OIDCClient, error) {
	var c model.OIDCClient
	var uris string
	var created int64
	if err := row.Scan(&c.ID, &c.SecretHash, &c.Public, &uris, &created); err != nil {
		return model.OIDCClient{}, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return model.OIDCClient{}, fmt.Errorf("redirect URIs of %s: %w", c.ID, err)
	}
	c.CreatedAt = time.UnixMilli(created).UTC()
	return c, nil
}

// OIDCClient returns the client id; ErrNotFound when none.
func (s *Store) OIDCClient(ctx context.Context, id string) (model.OIDCClient, error) {
	c, err := scanOIDCClient(s.queryRow(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return model.OIDCClient{}, fmt.Errorf("oidc client %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return model.OIDCClient{}, fmt.Errorf("read oidc client %s: %w", id, err)
	}
	return c, nil
}

// OIDCClients lists the registered clients by ID.
func (s *Store) OIDCClients(ctx context.Context) ([]model.OIDCClient, error) {
	rows, err := s.query(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list oidc clients: %w", err)
	}
	defer rows.Close()
	var out []model.OIDCClient
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list oidc clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RemoveOIDCClient deletes a client with its pending auth requests and
// access tokens; ErrNotFound when there is none.
func (s *Store) RemoveOIDCClient(ctx context.Context, id string) error {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		for i, q := range []string{`DELETE FROM oidc_clients WHERE id = ?`, `DELETE FROM oidc_auth_requests WHERE client_id = ?`,
			`DELETE FROM oidc_tokens WHERE client_id = ?`} {
			res, err := tx.ExecContext(ctx, q, id)
			if err != nil {
				return err
			}
			if i == 0 {
				n, _ = res.RowsAffected()
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove oidc client %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("oidc client %s: %w", id, storage.ErrNotFound)
	}
	return nil
}

// AddOIDCKey stores k sealed with the master key and makes it the signing
// key: every other key is retired now (it stays published until the
// caller's verification window ends).
func (s *Store) AddOIDCKey(ctx context.Context, k model.OIDCKey) error {
	sealed, err := s.seal.SealOIDCKey(k.ID, k.Private)
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	err = s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE oidc_keys SET retired_at = ? WHERE retired_at IS NULL`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_keys (id, alg, sealed, created_at) VALUES (?,?,?,?)`, k.ID, k.Alg, sealed, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("add oidc key: %w", err)
	}
	return nil
}

// OIDCKeys returns the keys not retired before since (zero: all), newest
// first, opened with the master key.
func (s *Store) OIDCKeys(ctx context.Context, since time.Time) ([]model.OIDCKey, error) {
	rows, err := s.query(ctx, `SELECT id, alg, sealed, created_at, retired_at FROM oidc_keys
		WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC, rowid DESC`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read oidc keys: %w", err)
	}
	defer rows.Close()
	var out []model.OIDCKey
	for rows.Next() {
		var k model.OIDCKey
		var sealed []byte
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Alg, &sealed, &created, &retired); err != nil {
			return nil, fmt.Errorf("read oidc keys: %w", err)
		}
		if k.Private, err = s.seal.OpenOIDCKey(k.ID, sealed); err != nil {
			return nil, err
		}
		k.CreatedAt = time.UnixMilli(created).UTC()
		if retired.Valid {
			t := time.UnixMilli(retired.Int64).UTC()
			k.RetiredAt = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// CreateOIDCAuthRequest stores a new auth request valid for ttl.
func (s *Store) CreateOIDCAuthRequest(ctx context.Context, id, clientID string, request []byte, ttl time.Duration) error {
	now := s.now()
	_, err := s.exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, request, created_at, expires_at) VALUES (?,?,?,?,?)`,
		id, clientID, string(request), now.UnixMilli(), now.Add(ttl).UnixMilli())
	if err != nil {
		return fmt.Errorf("store auth request: %w", err)
	}
	return nil
}

const authRequestCols = `id, client_id, request, signin, created_at, expires_at`

func scanAuthRequest(row scanner) (model.OIDCAuthRequest, error) {
	var a model.OIDCAuthRequest
	var req string
	var signin sql.NullString
	var created, exp int64
	if err := row.Scan(&a.ID, &a.ClientID, &req, &signin, &created, &exp); err != nil {
		return model.OIDCAuthRequest{}, err
	}
	a.Request = []byte(req)
	if signin.Valid {
		a.SignIn = []byte(signin.String)
	}
	a.CreatedAt, a.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(exp).UTC()
	return a, nil
}

// OIDCAuthRequest returns the unexpired auth request id whose code was not
// issued yet; ErrNotFound otherwise.
func (s *Store) OIDCAuthRequest(ctx context.Context, id string) (model.OIDCAuthRequest, error) {
	a, err := scanAuthRequest(s.queryRow(ctx, `SELECT `+authRequestCols+` FROM oidc_auth_requests
		WHERE id = ? AND code_hash IS NULL AND expires_at > ?`, id, s.now().UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return model.OIDCAuthRequest{}, fmt.Errorf("auth request: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.OIDCAuthRequest{}, fmt.Errorf("read auth request: %w", err)
	}
	return a, nil
}

// CompleteOIDCAuthRequest records the sign-in that answers auth request
// id, once: ErrNotFound when it is unknown, expired or already completed.
func (s *Store) CompleteOIDCAuthRequest(ctx context.Context, id string, signin []byte) error {
	res, err := s.exec(ctx, `UPDATE oidc_auth_requests SET signin = ? WHERE id = ? AND signin IS NULL AND expires_at > ?`,
		string(signin), id, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("complete auth request: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("auth request: %w", storage.ErrNotFound)
	}
	return nil
}

// SaveOIDCCode attaches the authorization code to the completed auth
// request id, once, valid for ttl from now: ErrNotFound when the request
// is not completed, expired or has a code already.
func (s *Store) SaveOIDCCode(ctx context.Context, id, code string, ttl time.Duration) error {
	now := s.now()
	res, err := s.exec(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, expires_at = ?
		WHERE id = ? AND signin IS NOT NULL AND code_hash IS NULL AND expires_at > ?`,
		storage.OIDCCodeHash(code), now.Add(ttl).UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("save authorization code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("auth request: %w", storage.ErrNotFound)
	}
	return nil
}

// ConsumeOIDCCode marks code used and returns its auth request, once: the
// database decides which of two concurrent exchanges wins. A code used
// before is ErrReplayed, and the access tokens issued for it are revoked
// (RFC 6749 §4.1.2); an unknown or expired code is ErrNotFound.
func (s *Store) ConsumeOIDCCode(ctx context.Context, code string) (model.OIDCAuthRequest, error) {
	h := storage.OIDCCodeHash(code)
	res, err := s.exec(ctx, `UPDATE oidc_auth_requests SET code_used = 1 WHERE code_hash = ? AND code_used = 0 AND expires_at > ?`,
		h, s.now().UnixMilli())
	if err != nil {
		return model.OIDCAuthRequest{}, fmt.Errorf("use authorization code: %w", err)
	}
	row := s.queryRow(ctx, `SELECT `+authRequestCols+` FROM oidc_auth_requests WHERE code_hash = ?`, h)
	a, err := scanAuthRequest(row)
	if n, _ := res.RowsAffected(); n == 1 && err == nil {
		return a, nil
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return model.OIDCAuthRequest{}, fmt.Errorf("authorization code: %w", storage.ErrNotFound)
	case err != nil:
		return model.OIDCAuthRequest{}, fmt.Errorf("read auth request: %w", err)
	}
	var used bool
	if err := s.queryRow(ctx, `SELECT code_used FROM oidc_auth_requests WHERE code_hash = ?`, h).Scan(&used); err == nil && used {
		if _, err := s.exec(ctx, `DELETE FROM oidc_tokens WHERE auth_request = ?`, a.ID); err != nil {
			return model.OIDCAuthRequest{}, fmt.Errorf("revoke tokens of a replayed code: %w", err)
		}
		return model.OIDCAuthRequest{}, storage.ErrReplayed
	}
	return model.OIDCAuthRequest{}, fmt.Errorf("authorization code: %w", storage.ErrNotFound)
}

// DeleteOIDCAuthRequest removes an auth request (no error when absent).
func (s *Store) DeleteOIDCAuthRequest(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM oidc_auth_requests WHERE id = ? AND code_used = 0`, id)
	return err
}

// AddOIDCToken stores an access token.
func (s *Store) AddOIDCToken(ctx context.Context, t model.OIDCToken) error {
	scopes, _ := json.Marshal(t.Scopes)
	_, err := s.exec(ctx, `INSERT INTO oidc_tokens (id, auth_request, client_id, username, scopes, expires_at) VALUES (?,?,?,?,?,?)`,
		t.ID, t.AuthRequest, t.ClientID, t.Username, string(scopes), t.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	return nil
}

// OIDCToken returns the unexpired, unrevoked access token id.
func (s *Store) OIDCToken(ctx context.Context, id string) (model.OIDCToken, error) {
	var t model.OIDCToken
	var scopes string
	var exp int64
	err := s.queryRow(ctx, `SELECT id, auth_request, client_id, username, scopes, expires_at FROM oidc_tokens WHERE id = ? AND expires_at > ?`,
		id, s.now().UnixMilli()).Scan(&t.ID, &t.AuthRequest, &t.ClientID, &t.Username, &scopes, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return model.OIDCToken{}, fmt.Errorf("access token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.OIDCToken{}, fmt.Errorf("read access token: %w", err)
	}
	json.Unmarshal([]byte(scopes), &t.Scopes)
	t.ExpiresAt = time.UnixMilli(exp).UTC()
	return t, nil
}

// RevokeOIDCToken deletes the access token id of clientID (no error when
// absent: revocation of an unknown token succeeds, RFC 7009 §2.2).
func (s *Store) RevokeOIDCToken(ctx context.Context, id, clientID string) error {
	if _, err := s.exec(ctx, `DELETE FROM oidc_tokens WHERE id = ? AND client_id = ?`, id, clientID); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	return nil
}
