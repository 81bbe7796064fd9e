package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// AddOIDCClient registers c; ErrExists when its ID is taken.
func (s *Store) AddOIDCClient(ctx context.Context, c model.OIDCClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("add oidc client %s: %w", c.ID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO oidc_clients (id, secret_hash, public, redirect_uris, created_at) VALUES ($1,$2,$3,$4,$5)`,
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

func scanOIDCClient(row pgx.Row) (model.OIDCClient, error) {
	var c model.OIDCClient
	var uris string
	var created int64
	if err := row.Scan(&c.ID, &c.SecretHash, &c.Public, &uris, &created); err != nil {
		return model.OIDCClient{}, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return model.OIDCClient{}, fmt.Errorf("redirect URIs of %s: %w", c.ID, err)
	}
	c.CreatedAt = utc(created)
	return c, nil
}

// OIDCClient returns the client id; ErrNotFound when none.
func (s *Store) OIDCClient(ctx context.Context, id string) (model.OIDCClient, error) {
	var c model.OIDCClient
	err := s.row(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients WHERE id = $1`, args(id), func(r pgx.Row) error {
		var err error
		c, err = scanOIDCClient(r)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return model.OIDCClient{}, fmt.Errorf("oidc client %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return model.OIDCClient{}, fmt.Errorf("read oidc client %s: %w", id, err)
	}
	return c, nil
}

// OIDCClients lists the registered clients by ID.
func (s *Store) OIDCClients(ctx context.Context) ([]model.OIDCClient, error) {
	var out []model.OIDCClient
	err := s.query(ctx, `SELECT `+oidcClientCols+` FROM oidc_clients ORDER BY id`, nil, func(r pgx.Rows) error {
		c, err := scanOIDCClient(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list oidc clients: %w", err)
	}
	return out, nil
}

// RemoveOIDCClient deletes a client with its pending auth requests and
// access tokens; ErrNotFound when there is none.
func (s *Store) RemoveOIDCClient(ctx context.Context, id string) error {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		for i, q := range []string{`DELETE FROM oidc_clients WHERE id = $1`, `DELETE FROM oidc_auth_requests WHERE client_id = $1`,
			`DELETE FROM oidc_tokens WHERE client_id = $1`} {
			tag, err := tx.Exec(ctx, q, id)
			if err != nil {
				return err
			}
			if i == 0 {
				n = tag.RowsAffected()
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
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE oidc_keys SET retired_at = $1 WHERE retired_at IS NULL`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_keys (id, alg, sealed, created_at) VALUES ($1,$2,$3,$4)`, k.ID, k.Alg, sealed, now)
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
	var out []model.OIDCKey
	err := s.query(ctx, `SELECT id, alg, sealed, created_at, retired_at FROM oidc_keys
		WHERE retired_at IS NULL OR retired_at >= $1 ORDER BY created_at DESC, seq DESC`, args(since.UnixMilli()), func(r pgx.Rows) error {
		var k model.OIDCKey
		var sealed []byte
		var created int64
		var retired *int64
		if err := r.Scan(&k.ID, &k.Alg, &sealed, &created, &retired); err != nil {
			return err
		}
		var err error
		if k.Private, err = s.seal.OpenOIDCKey(k.ID, sealed); err != nil {
			return err
		}
		k.CreatedAt = utc(created)
		if retired != nil {
			t := utc(*retired)
			k.RetiredAt = &t
		}
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read oidc keys: %w", err)
	}
	return out, nil
}

// CreateOIDCAuthRequest stores a new auth request valid for ttl.
func (s *Store) CreateOIDCAuthRequest(ctx context.Context, id, clientID string, request []byte, ttl time.Duration) error {
	now := s.now()
	_, err := s.exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, request, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		id, clientID, string(request), now.UnixMilli(), now.Add(ttl).UnixMilli())
	if err != nil {
		return fmt.Errorf("store auth request: %w", err)
	}
	return nil
}

const authRequestCols = `id, client_id, request, signin, created_at, expires_at`

func scanAuthRequest(row pgx.Row) (model.OIDCAuthRequest, error) {
	var a model.OIDCAuthRequest
	var req string
	var signin *string
	var created, exp int64
	if err := row.Scan(&a.ID, &a.ClientID, &req, &signin, &created, &exp); err != nil {
		return model.OIDCAuthRequest{}, err
	}
	a.Request = []byte(req)
	if signin != nil {
		a.SignIn = []byte(*signin)
	}
	a.CreatedAt, a.ExpiresAt = utc(created), utc(exp)
	return a, nil
}

// authRequest reads one auth request with q (selecting authRequestCols).
func (s *Store) authRequest(ctx context.Context, q string, args ...any) (model.OIDCAuthRequest, error) {
	var a model.OIDCAuthRequest
	err := s.row(ctx, q, args, func(r pgx.Row) error {
		var err error
		a, err = scanAuthRequest(r)
		return err
	})
	return a, err
}

// OIDCAuthRequest returns the unexpired auth request id whose code was not
// issued yet; ErrNotFound otherwise.
func (s *Store) OIDCAuthRequest(ctx context.Context, id string) (model.OIDCAuthRequest, error) {
	a, err := s.authRequest(ctx, `SELECT `+authRequestCols+` FROM oidc_auth_requests
		WHERE id = $1 AND code_hash IS NULL AND expires_at > $2`, id, s.now().UnixMilli())
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := s.exec(ctx, `UPDATE oidc_auth_requests SET signin = $1 WHERE id = $2 AND signin IS NULL AND expires_at > $3`,
		string(signin), id, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("complete auth request: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("auth request: %w", storage.ErrNotFound)
	}
	return nil
}

// SaveOIDCCode attaches the authorization code to the completed auth
// request id, once, valid for ttl from now: ErrNotFound when the request
// is not completed, expired or has a code already.
func (s *Store) SaveOIDCCode(ctx context.Context, id, code string, ttl time.Duration) error {
	now := s.now()
	tag, err := s.exec(ctx, `UPDATE oidc_auth_requests SET code_hash = $1, expires_at = $2
		WHERE id = $3 AND signin IS NOT NULL AND code_hash IS NULL AND expires_at > $4`,
		storage.OIDCCodeHash(code), now.Add(ttl).UnixMilli(), id, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("save authorization code: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("auth request: %w", storage.ErrNotFound)
	}
	return nil
}

// ConsumeOIDCCode marks code used and returns its auth request, once: one
// conditional UPDATE … RETURNING, so the database decides which of two
// concurrent exchanges wins. A code used before is ErrReplayed, and the
// access tokens issued for it are revoked (RFC 6749 §4.1.2); an unknown or
// expired code is ErrNotFound.
func (s *Store) ConsumeOIDCCode(ctx context.Context, code string) (model.OIDCAuthRequest, error) {
	h := storage.OIDCCodeHash(code)
	a, err := s.authRequest(ctx, `UPDATE oidc_auth_requests SET code_used = true
		WHERE code_hash = $1 AND NOT code_used AND expires_at > $2 RETURNING `+authRequestCols, h, s.now().UnixMilli())
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return model.OIDCAuthRequest{}, fmt.Errorf("use authorization code: %w", err)
	}
	var id string
	var used bool
	err = s.queryRow(ctx, `SELECT id, code_used FROM oidc_auth_requests WHERE code_hash = $1`, args(h), &id, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && !used):
		return model.OIDCAuthRequest{}, fmt.Errorf("authorization code: %w", storage.ErrNotFound)
	case err != nil:
		return model.OIDCAuthRequest{}, fmt.Errorf("read auth request: %w", err)
	}
	if _, err := s.exec(ctx, `DELETE FROM oidc_tokens WHERE auth_request = $1`, id); err != nil {
		return model.OIDCAuthRequest{}, fmt.Errorf("revoke tokens of a replayed code: %w", err)
	}
	return model.OIDCAuthRequest{}, storage.ErrReplayed
}

// DeleteOIDCAuthRequest removes an auth request (no error when absent).
func (s *Store) DeleteOIDCAuthRequest(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM oidc_auth_requests WHERE id = $1 AND NOT code_used`, id); err != nil {
		return fmt.Errorf("delete auth request: %w", err)
	}
	return nil
}

// AddOIDCToken stores an access token.
func (s *Store) AddOIDCToken(ctx context.Context, t model.OIDCToken) error {
	scopes, err := json.Marshal(t.Scopes)
	if err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO oidc_tokens (id, auth_request, client_id, username, scopes, expires_at) VALUES ($1,$2,$3,$4,$5,$6)`,
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
	err := s.queryRow(ctx, `SELECT id, auth_request, client_id, username, scopes, expires_at FROM oidc_tokens WHERE id = $1 AND expires_at > $2`,
		args(id, s.now().UnixMilli()), &t.ID, &t.AuthRequest, &t.ClientID, &t.Username, &scopes, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.OIDCToken{}, fmt.Errorf("access token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.OIDCToken{}, fmt.Errorf("read access token: %w", err)
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return model.OIDCToken{}, fmt.Errorf("scopes of access token: %w", err)
	}
	t.ExpiresAt = utc(exp)
	return t, nil
}

// RevokeOIDCToken deletes the access token id of clientID (no error when
// absent: revocation of an unknown token succeeds, RFC 7009 §2.2).
func (s *Store) RevokeOIDCToken(ctx context.Context, id, clientID string) error {
	if _, err := s.exec(ctx, `DELETE FROM oidc_tokens WHERE id = $1 AND client_id = $2`, id, clientID); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	return nil
}
