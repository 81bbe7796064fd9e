package oidc_test

import (
	"github.com/camotp/camotp/internal/testclock"

	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// env is a camotp server with OpenID Connect on, alice with a Body 4
// camera, and the relying parties registered.
type env struct {
	srv    *server.Server
	clock  *testclock.Shift
	cam    *device.State
	issuer string
}

// freeAddr is a loopback address free a moment ago: the issuer must name
// the server's port before the server starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &testclock.Shift{}
	addr := freeAddr(t)
	e := &env{clock: clk, issuer: "http://" + addr}
	e.srv = testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.Now = clk.Now
		c.HTTPAddr = addr
		c.OIDCIssuer = e.issuer
	})
	testenv.User(t, e.srv, "alice", "pw-alice-long")
	e.cam = testenv.ProvisionedCamera(t, e.srv, "BC4-A", device.Body4, "alice")
	return e
}

// addClient registers a client through the admin API and returns its secret.
func (e *env) addClient(t *testing.T, id string, public bool, redirects ...string) string {
	t.Helper()
	status, body := testenv.API(t, e.srv, e.srv.AdminToken, "POST", "/api/v1/admin/oidc/clients",
		map[string]any{"id": id, "redirectUris": redirects, "public": public})
	if status != http.StatusCreated {
		t.Fatalf("add client %s: %d %v", id, status, body)
	}
	s, _ := body["secret"].(string)
	if public != (s == "") {
		t.Fatalf("client %s: public %v, secret %q", id, public, s)
	}
	return s
}

// claims are the ID token claims the relying party reads.
type claims struct {
	Sub               string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	Nonce             string   `json:"nonce"`
	AuthTime          int64    `json:"auth_time"`
	AMR               []string `json:"amr"`
	ACR               string   `json:"acr"`
	CameraModel       string   `json:"camotp_camera_model"`
	CameraSerial      string   `json:"camotp_camera_serial"`
}

// result is what the relying party made of one callback.
type result struct {
	claims  claims
	idToken *gooidc.IDToken
	token   *oauth2.Token
	err     error
}

// flow is one sign-in the relying party started.
type flow struct{ nonce, verifier string }

// rp is a relying party built from go-oidc and x/oauth2 only: it starts
// the code flow with state, nonce and PKCE S256, exchanges the code and
// verifies the ID token's signature against camotp's JWKS.
type rp struct {
	srv      *httptest.Server
	conf     oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider
	mu       sync.Mutex
	flows    map[string]flow // by state; each used once
	results  chan result
}

func newRP(t *testing.T, e *env, clientID string, public bool) *rp {
	t.Helper()
	r := &rp{flows: map[string]flow{}, results: make(chan result, 8)}
	mux := http.NewServeMux()
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	redirect := r.srv.URL + "/callback"
	secret := e.addClient(t, clientID, public, redirect)
	var err error
	if r.provider, err = gooidc.NewProvider(context.Background(), e.issuer); err != nil {
		t.Fatal(err)
	}
	r.conf = oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: r.provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}
	r.verifier = r.provider.Verifier(&gooidc.Config{ClientID: clientID})
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, r.authURL(req.URL.Query()), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, req *http.Request) {
		res := r.callback(req)
		r.results <- res
		if res.err != nil {
			http.Error(w, res.err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `<!doctype html><p id="rp-user">Records system: signed in as %s with %s</p>`, res.claims.PreferredUsername, res.claims.CameraSerial)
	})
	return r
}

func random(t testing.TB) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authURL starts a flow; extra are more authorize parameters (prompt,
// max_age, acr_values).
func (r *rp) authURL(extra url.Values) string {
	state, nonce, v := random(nil), random(nil), oauth2.GenerateVerifier()
	r.mu.Lock()
	r.flows[state] = flow{nonce: nonce, verifier: v}
	r.mu.Unlock()
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(v)}
	for k, vs := range extra {
		opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
	}
	return r.conf.AuthCodeURL(state, opts...)
}

// callback checks state, exchanges the code with the PKCE verifier and
// verifies the ID token (signature, iss, aud, exp) and its nonce.
func (r *rp) callback(req *http.Request) result {
	q := req.URL.Query()
	if e := q.Get("error"); e != "" {
		return result{err: fmt.Errorf("provider answered %s: %s", e, q.Get("error_description"))}
	}
	r.mu.Lock()
	f, ok := r.flows[q.Get("state")]
	delete(r.flows, q.Get("state"))
	r.mu.Unlock()
	if !ok {
		return result{err: errors.New("state mismatch: not a flow this client started")}
	}
	return r.exchange(req.Context(), q.Get("code"), f)
}

func (r *rp) exchange(ctx context.Context, code string, f flow) result {
	tok, err := r.conf.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return result{err: fmt.Errorf("exchange: %w", err)}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		return result{err: fmt.Errorf("verify id token: %w", err)}
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return result{err: err}
	}
	if c.Nonce != f.nonce {
		return result{err: fmt.Errorf("nonce %q, want %q", c.Nonce, f.nonce)}
	}
	return result{claims: c, idToken: idt, token: tok}
}

func (r *rp) result(t *testing.T) result {
	t.Helper()
	select {
	case res := <-r.results:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("the relying party got no callback")
	}
	return result{}
}

// browser is an HTTP client with a cookie jar that follows redirects
// within camotp and stops at the relying party.
type browser struct {
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, e *env) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{base: e.issuer}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is where the browser stands: camotp's page body, or the redirect
// to the relying party.
type page struct {
	url      *url.URL
	body     string
	status   int
	location *url.URL // set when camotp sent the browser away
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	p := page{url: resp.Request.URL, body: string(data), status: resp.StatusCode}
	if loc, err := resp.Location(); err == nil && resp.StatusCode/100 == 3 {
		p.location = loc
	}
	return p
}

func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(t, req)
}

// submit posts form to path with the CSRF token of p.
func (b *browser) submit(t *testing.T, p page, path string, form url.Values) page {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	form.Set("csrf", m[1])
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// signIn answers the pages with alice's password and, when asked for it,
// the code on her camera; keep ticks "Keep me signed in". It returns the
// redirect to the relying party and whether the MFA page was shown.
func (e *env) signIn(t *testing.T, b *browser, p page, keep bool) (*url.URL, bool) {
	t.Helper()
	if p.location != nil {
		return p.location, false
	}
	if !strings.HasSuffix(p.url.Path, "/login") {
		t.Fatalf("expected the sign-in page, at %s (%d):\n%s", p.url, p.status, p.body)
	}
	p = b.submit(t, p, "/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}})
	if p.location != nil {
		return p.location, false
	}
	if p.url.Path != "/mfa" || !strings.Contains(p.body, "Body 4") {
		t.Fatalf("expected the camera challenge, at %s (%d):\n%s", p.url, p.status, p.body)
	}
	form := url.Values{"method": {"bodycam"}, "code": {testenv.ScreenCode(t, e.cam, e.clock.Now())}}
	if keep {
		form.Set("keep", "on")
	}
	p = b.submit(t, p, "/mfa", form)
	if p.location == nil {
		t.Fatalf("MFA did not return to the client: at %s (%d):\n%s", p.url, p.status, p.body)
	}
	return p.location, true
}

// callbackOf delivers the redirect to the relying party (as the browser
// would) and returns its result.
func (r *rp) deliver(t *testing.T, loc *url.URL) result {
	t.Helper()
	resp, err := http.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return r.result(t)
}
