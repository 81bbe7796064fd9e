package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/camotp/camotp/internal/model"
)

// ClientStore keeps registered clients; a storage.Store satisfies it.
type ClientStore interface {
	AddOIDCClient(ctx context.Context, c model.OIDCClient) error
	OIDCClient(ctx context.Context, id string) (model.OIDCClient, error)
	OIDCClients(ctx context.Context) ([]model.OIDCClient, error)
	RemoveOIDCClient(ctx context.Context, id string) error
}

// ErrBadClient is a client registration the provider refuses.
var ErrBadClient = errors.New("invalid client registration")

var clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,64}$`)

// CheckRedirectURI accepts an absolute https URI without fragment, or an
// http one on a loopback host (development, native apps).
func CheckRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%w: redirect URI %q: want an absolute URL without fragment", ErrBadClient, raw)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopback(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("%w: redirect URI %q: want https (http only on a loopback host)", ErrBadClient, raw)
}

// NewClient checks a registration and returns the client to store with
// its secret ("" for a public client), shown once: only its hash is kept.
func NewClient(id string, redirectURIs []string, public bool) (model.OIDCClient, string, error) {
	if !clientIDRe.MatchString(id) {
		return model.OIDCClient{}, "", fmt.Errorf("%w: client ID %q: 1-64 of A-Z a-z 0-9 . _ ~ -", ErrBadClient, id)
	}
	if len(redirectURIs) == 0 {
		return model.OIDCClient{}, "", fmt.Errorf("%w: at least one redirect URI", ErrBadClient)
	}
	for _, u := range redirectURIs {
		if err := CheckRedirectURI(u); err != nil {
			return model.OIDCClient{}, "", err
		}
	}
	c := model.OIDCClient{ID: id, Public: public, RedirectURIs: slices.Compact(slices.Clone(redirectURIs))}
	if public {
		return c, "", nil
	}
	secret, err := randomID()
	if err != nil {
		return model.OIDCClient{}, "", err
	}
	c.SecretHash = secretHash(secret)
	return c, secret, nil
}

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// checkSecret compares a presented secret with the stored hash in
// constant time.
func checkSecret(c model.OIDCClient, secret string) bool {
	return !c.Public && len(c.SecretHash) == sha256.Size && subtle.ConstantTimeCompare(secretHash(secret), c.SecretHash) == 1
}

// client is a registered client as the library sees it.
type client struct {
	c   model.OIDCClient
	ttl time.Duration
}

// GetID is the client ID.
func (c *client) GetID() string { return c.c.ID }

// RedirectURIs are the registered redirect URIs (exact match).
func (c *client) RedirectURIs() []string { return c.c.RedirectURIs }

// PostLogoutRedirectURIs are where end-session may send the browser: the
// redirect URIs and their origins.
func (c *client) PostLogoutRedirectURIs() []string {
	out := slices.Clone(c.c.RedirectURIs)
	for _, r := range c.c.RedirectURIs {
		if u, err := url.Parse(r); err == nil {
			out = append(out, u.Scheme+"://"+u.Host+"/")
		}
	}
	return out
}

// ApplicationType: a public client is a native app (no secret, PKCE
// required); a confidential one a web server.
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

// AuthMethod is none for a public client, else the secret in HTTP Basic
// (client_secret_post is accepted too).
func (c *client) AuthMethod() zoidc.AuthMethod {
	if c.c.Public {
		return zoidc.AuthMethodNone
	}
	return zoidc.AuthMethodBasic
}

// ResponseTypes: the authorization-code flow only.
func (c *client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}

// GrantTypes: authorization_code only.
func (c *client) GrantTypes() []zoidc.GrantType { return []zoidc.GrantType{zoidc.GrantTypeCode} }

// LoginURL is camotp's sign-in page for the auth request id.
func (c *client) LoginURL(id string) string { return "/login?authRequest=" + url.QueryEscape(id) }

// AccessTokenType: opaque bearer tokens, checked at userinfo.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }

// IDTokenLifetime is the provider's token lifetime.
func (c *client) IDTokenLifetime() time.Duration { return c.ttl }

// DevMode is off: no relaxed redirect checks.
func (c *client) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes keeps the scopes.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes keeps the scopes.
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed allows no scope beyond the standard ones.
func (c *client) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts profile and email claims in the ID
// token, so a client needs no userinfo call.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew is none.
func (c *client) ClockSkew() time.Duration { return 0 }
