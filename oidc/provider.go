// Package oidc is camotp's OpenID Connect provider: a thin adapter that
// lets records and evidence systems delegate sign-in to camotp. The
// protocol (discovery, authorize, token, JWKS, userinfo, end-session,
// revocation; authorization-code flow with PKCE) is
// github.com/zitadel/oidc/v3/pkg/op, an OpenID Certified implementation;
// this package only stores its state (internal/storage) and sends browsers
// to the sign-in pages (package web), whose sign-in service (package
// signin) checks the password and second factor with every rule it has.
// Nothing here parses or signs a JWT by hand.
package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/signin"
	"github.com/camotp/camotp/web"
)

// Paths of the provider's endpoints under the issuer.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathAuthorize  = "/oidc/authorize"
	PathCallback   = PathAuthorize + "/callback"
	PathToken      = "/oidc/token"
	PathUserinfo   = "/oidc/userinfo"
	PathRevoke     = "/oidc/revoke"
	PathEndSession = "/oidc/end_session"
	PathKeys       = "/oidc/keys"
	PathIntrospect = "/oidc/introspect"
)

// Custom ID token claims of a body-camera sign-in.
const (
	ClaimCameraModel  = "camotp_camera_model"
	ClaimCameraSerial = "camotp_camera_serial"
)

// ACR values: what a sign-in proved. A client asks for a second factor
// with acr_values=mfa (or the OpenID PAPE multi-factor URI).
const (
	ACRMFA      = "mfa"
	ACRPassword = "pwd"
	papeMFA     = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
)

// Config tunes the provider.
type Config struct {
	// Issuer is the provider's URL: https, or http on a loopback host for
	// development. Discovery is at Issuer + PathDiscovery.
	Issuer string
	// RequestTTL bounds the time from authorize to a finished sign-in
	// (default 10 minutes).
	RequestTTL time.Duration
	// CodeTTL is an authorization code's lifetime (default 60 s).
	CodeTTL time.Duration
	// TokenTTL is the lifetime of access and ID tokens (default 1 hour); a
	// retired signing key stays in the JWKS this long.
	TokenTTL time.Duration
	// CryptoKey encrypts the opaque codes and access tokens (derive it
	// from the master key).
	CryptoKey [32]byte
	Now       func() time.Time
	Log       *slog.Logger
}

// Store is what the provider keeps; a storage.Store satisfies it.
type Store interface {
	ClientStore
	OIDCKeys(ctx context.Context, since time.Time) ([]model.OIDCKey, error)
	AddOIDCKey(ctx context.Context, k model.OIDCKey) error
	CreateOIDCAuthRequest(ctx context.Context, id, clientID string, request []byte, ttl time.Duration) error
	OIDCAuthRequest(ctx context.Context, id string) (model.OIDCAuthRequest, error)
	CompleteOIDCAuthRequest(ctx context.Context, id string, signin []byte) error
	SaveOIDCCode(ctx context.Context, id, code string, ttl time.Duration) error
	ConsumeOIDCCode(ctx context.Context, code string) (model.OIDCAuthRequest, error)
	DeleteOIDCAuthRequest(ctx context.Context, id string) error
	AddOIDCToken(ctx context.Context, t model.OIDCToken) error
	OIDCToken(ctx context.Context, id string) (model.OIDCToken, error)
	RevokeOIDCToken(ctx context.Context, id, clientID string) error
	User(ctx context.Context, username string) (model.User, string, error)
	UserBySubject(ctx context.Context, sub string) (model.User, error)
	Audit(ctx context.Context, e model.AuditEntry) error
}

// Provider is the OpenID Connect provider.
type Provider struct {
	cfg     Config
	st      Store
	svc     *signin.Service
	op      *op.Provider
	handler http.Handler
}

// CheckIssuer validates an issuer URL: https, or http on a loopback host;
// no query or fragment.
func CheckIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q: want an absolute URL such as https://sso.pd.example", issuer)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && loopback(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("issuer %q: want https (http only on a loopback host, for development)", issuer)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New returns the provider, generating its first signing key (RS256) when
// the store has none.
func New(ctx context.Context, cfg Config, st Store, svc *signin.Service) (*Provider, error) {
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = 10 * time.Minute
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = time.Minute
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Provider{cfg: cfg, st: st, svc: svc}
	keys, err := st.OIDCKeys(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		k, err := NewKey(AlgRS256)
		if err != nil {
			return nil, err
		}
		if err := st.AddOIDCKey(ctx, k); err != nil {
			return nil, err
		}
		cfg.Log.Info("oidc signing key generated", "kid", k.ID, "alg", k.Alg)
	}
	opCfg := &op.Config{
		CryptoKey:       cfg.CryptoKey,
		CodeMethodS256:  true,
		AuthMethodPost:  true,
		SupportedScopes: []string{zoidc.ScopeOpenID, zoidc.ScopeProfile, zoidc.ScopeEmail},
		SupportedClaims: append(append([]string(nil), op.DefaultSupportedClaims...), ClaimCameraModel, ClaimCameraSerial),
		// Where end-session sends a browser without a registered
		// post_logout_redirect_uri.
		DefaultLogoutRedirectURI: "/login",
	}
	opts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint(PathAuthorize), op.NewEndpoint(PathToken), op.NewEndpoint(PathUserinfo),
			op.NewEndpoint(PathRevoke), op.NewEndpoint(PathEndSession), op.NewEndpoint(PathKeys)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(PathIntrospect)),
	}
	if strings.HasPrefix(cfg.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, &opStorage{p: p}, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	h := p.op.HttpHandler()
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The storage sees the browser's session (end-session signs it
		// out) and the client's address (audit), nothing else of the
		// request.
		ctx := context.WithValue(r.Context(), reqKey{}, reqInfo{session: sessionCookie(r), ip: httpx.ClientIP(r)})
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case PathAuthorize:
			w = &bindingWriter{ResponseWriter: w, p: p}
		case PathCallback:
			if !p.Owns(r, r.URL.Query().Get("id")) {
				http.Error(w, errOtherBrowser.Error(), http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
	return p, nil
}

// An auth request is bound to the browser that made it: the answer to
// /oidc/authorize that sends the browser to the sign-in page also sets a
// cookie holding a MAC of the request's id, and only a browser holding it
// may sign the request in and collect its code. Without it anyone could
// start a request in their own browser, get a signed-in officer's browser
// to open its sign-in link, and collect a code for the officer's account.
const bindingCookie = "camotp_ar_"

// errOtherBrowser refuses a request started in another browser.
var errOtherBrowser = errors.New("this sign-in was started in another browser: start again from the application")

// binding is the cookie value that binds auth request id to a browser.
func (p *Provider) binding(id string) string {
	m := hmac.New(sha256.New, p.cfg.CryptoKey[:])
	m.Write([]byte("camotp oidc browser binding\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Owns tells whether r comes from the browser that made auth request id.
func (p *Provider) Owns(r *http.Request, id string) bool {
	c, err := r.Cookie(bindingCookie + id)
	return err == nil && id != "" && hmac.Equal([]byte(c.Value), []byte(p.binding(id)))
}

// bindingWriter sets the binding cookie on the authorize endpoint's
// redirect to the sign-in page.
type bindingWriter struct {
	http.ResponseWriter
	p *Provider
}

func (w *bindingWriter) WriteHeader(status int) {
	if u, err := url.Parse(w.Header().Get("Location")); err == nil && u.Path == "/login" {
		if id := u.Query().Get("authRequest"); id != "" {
			http.SetCookie(w, &http.Cookie{Name: bindingCookie + id, Value: w.p.binding(id), Path: "/",
				MaxAge: int(w.p.cfg.RequestTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
				Secure: strings.HasPrefix(w.p.cfg.Issuer, "https://")})
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

type reqKey struct{}

type reqInfo struct{ session, ip string }

func info(ctx context.Context) reqInfo {
	i, _ := ctx.Value(reqKey{}).(reqInfo)
	return i
}

func sessionCookie(r *http.Request) string {
	c, err := r.Cookie(web.SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// Register adds the provider's endpoints to mux.
func (p *Provider) Register(mux *http.ServeMux) {
	mux.Handle("GET "+PathDiscovery, p.handler)
	mux.Handle("/oidc/", p.handler)
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// randomID returns 32 random bytes, base64url.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
