package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/camotp/camotp/internal/testenv"
)

// The code flow end to end with an HTTP browser: the relying party
// (go-oidc + x/oauth2, PKCE) gets a verified ID token with the camera
// claims, the code works once, and userinfo answers the access token.
func TestCodeFlow(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	b := newBrowser(t, e)
	start := time.Now()
	loc, mfa := e.signIn(t, b, b.get(t, r.authURL(nil)), false)
	if !mfa {
		t.Fatal("signed in without the second factor")
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != r.conf.RedirectURL {
		t.Fatalf("sent to %s, want %s", got, r.conf.RedirectURL)
	}
	res := r.deliver(t, loc)
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("full OIDC sign-in over HTTP (authorize → password → camera code → token → verified ID token): %v", time.Since(start))
	c := res.claims
	if c.PreferredUsername != "alice" || c.Email != "alice@pd.example" || c.Sub == "" || c.Sub == "alice" {
		t.Fatalf("claims %+v", c)
	}
	for _, m := range []string{"pwd", "otp", "mfa"} {
		if !slices.Contains(c.AMR, m) {
			t.Fatalf("amr %v lacks %s", c.AMR, m)
		}
	}
	if c.ACR != "mfa" || c.CameraModel != "Body 4" || c.CameraSerial != "BC4-A" || c.AuthTime == 0 {
		t.Fatalf("claims %+v", c)
	}
	if res.idToken.Issuer != e.issuer || !slices.Equal(res.idToken.Audience, []string{"records"}) {
		t.Fatalf("iss %s aud %v", res.idToken.Issuer, res.idToken.Audience)
	}
	// userinfo with the access token.
	ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(res.token))
	if err != nil || ui.Subject != c.Sub || ui.Email != "alice@pd.example" {
		t.Fatalf("userinfo %+v %v", ui, err)
	}
	// RP-initiated logout signs the browser out and returns to the client.
	rawID, _ := res.token.Extra("id_token").(string)
	out := b.get(t, e.issuer+"/oidc/end_session?"+url.Values{"id_token_hint": {rawID},
		"post_logout_redirect_uri": {r.srv.URL + "/"}, "state": {"bye"}}.Encode())
	if out.location == nil || out.location.String() != r.srv.URL+"/?state=bye" {
		t.Fatalf("end session: %d %v\n%s", out.status, out.location, out.body)
	}
	if p := b.get(t, r.authURL(nil)); p.location != nil || p.url.Path != "/login" {
		t.Fatalf("still signed in after end session: %v %s", p.location, p.url)
	}
	// The subject is stable: a second sign-in (next code) gives the same.
	e.clock.Add(30 * time.Second)
	b2 := newBrowser(t, e)
	loc, _ = e.signIn(t, b2, b2.get(t, r.authURL(nil)), false)
	if res2 := r.deliver(t, loc); res2.err != nil || res2.claims.Sub != c.Sub {
		t.Fatalf("second sign-in: sub %q vs %q (%v)", res2.claims.Sub, c.Sub, res2.err)
	}
	// Revocation ends the access token.
	form := url.Values{"token": {res.token.AccessToken}, "token_type_hint": {"access_token"}}
	req, _ := http.NewRequest("POST", e.issuer+"/oidc/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("records", r.conf.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(res.token)); err == nil {
		t.Fatal("userinfo answered a revoked token")
	}
}

// A code is single use: the second exchange fails, and the access token
// the first one got is revoked; a code past its minute fails.
func TestCodeReplayAndExpiry(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	start := func() (string, flow) {
		b := newBrowser(t, e)
		u := r.authURL(nil)
		loc, _ := e.signIn(t, b, b.get(t, u), false)
		r.mu.Lock()
		f := r.flows[loc.Query().Get("state")]
		r.mu.Unlock()
		return loc.Query().Get("code"), f
	}
	code, f := start()
	first := r.exchange(context.Background(), code, f)
	if first.err != nil {
		t.Fatal(first.err)
	}
	if again := r.exchange(context.Background(), code, f); again.err == nil || !strings.Contains(again.err.Error(), "invalid_grant") {
		t.Fatalf("replayed code: %v", again.err)
	}
	if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(first.token)); err == nil {
		t.Fatal("the access token of a replayed code still works")
	}
	e.clock.Add(30 * time.Second)
	code, f = start()
	e.clock.Add(61 * time.Second)
	if late := r.exchange(context.Background(), code, f); late.err == nil || !strings.Contains(late.err.Error(), "invalid_grant") {
		t.Fatalf("expired code: %v", late.err)
	}
}

// Requests camotp refuses: an unregistered redirect URI is never
// redirected to; a public client without PKCE, or with plain, is sent
// back with invalid_request; a tampered state is refused by the client.
func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t)
	conf := newRP(t, e, "records", false)
	pub := newRP(t, e, "mdt", true)
	b := newBrowser(t, e)

	u, _ := url.Parse(conf.authURL(nil))
	q := u.Query()
	q.Set("redirect_uri", "https://evil.example/cb")
	u.RawQuery = q.Encode()
	p := b.get(t, u.String())
	if p.status != http.StatusBadRequest || p.location != nil {
		t.Fatalf("wrong redirect URI: %d, location %v", p.status, p.location)
	}

	for name, mod := range map[string]func(url.Values){
		"no PKCE": func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") },
		"plain": func(q url.Values) {
			q.Set("code_challenge", q.Get("code_challenge"))
			q.Set("code_challenge_method", "plain")
		},
	} {
		u, _ := url.Parse(pub.authURL(nil))
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		p := b.get(t, u.String())
		if p.location == nil || p.location.Query().Get("error") != "invalid_request" || p.location.Query().Get("state") != q.Get("state") {
			t.Fatalf("%s: status %d location %v", name, p.status, p.location)
		}
	}

	// The public client with PKCE signs in.
	loc, _ := e.signIn(t, b, b.get(t, pub.authURL(nil)), false)
	// An attacker changes the state on the way back: the client refuses
	// it, and does not spend the code.
	q = loc.Query()
	state := q.Get("state")
	q.Set("state", state+"x")
	tampered := *loc
	tampered.RawQuery = q.Encode()
	if res := pub.deliver(t, &tampered); res.err == nil || !strings.Contains(res.err.Error(), "state mismatch") {
		t.Fatalf("tampered state: %v", res.err)
	}
	// The genuine state still works (PKCE, no secret).
	if res := pub.deliver(t, loc); res.err != nil || res.claims.PreferredUsername != "alice" {
		t.Fatalf("public client: %+v %v", res.claims, res.err)
	}
}

// A signed-in browser goes straight back to the client; prompt=login and
// an exceeded max_age ask for password and second factor again, even on a
// trusted browser; acr_values=mfa refuses the trusted browser's shortcut
// that an ordinary request takes.
func TestReauthentication(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	b := newBrowser(t, e)
	loc, _ := e.signIn(t, b, b.get(t, r.authURL(nil)), true) // keep me signed in
	first := r.deliver(t, loc)
	if first.err != nil {
		t.Fatal(first.err)
	}
	// Signed in: no page at all.
	e.clock.Add(30 * time.Second)
	p := b.get(t, r.authURL(nil))
	if p.location == nil {
		t.Fatalf("signed-in browser shown %s", p.url)
	}
	if res := r.deliver(t, p.location); res.err != nil || res.claims.AuthTime != first.claims.AuthTime || !slices.Contains(res.claims.AMR, "otp") {
		t.Fatalf("reused session: %+v %v", res.claims, res.err)
	}
	// prompt=none: straight back when signed in, login_required when not.
	if p := b.get(t, r.authURL(url.Values{"prompt": {"none"}})); p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("prompt=none, signed in: %v %s", p.location, p.url)
	} else if res := r.deliver(t, p.location); res.err != nil {
		t.Fatal(res.err)
	}
	if p := newBrowser(t, e).get(t, r.authURL(url.Values{"prompt": {"none"}})); p.location == nil || p.location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none, signed out: %v %s", p.location, p.url)
	}
	for name, extra := range map[string]url.Values{
		"prompt=login": {"prompt": {"login"}},
		"max_age=10":   {"max_age": {"10"}},
	} {
		e.clock.Add(30 * time.Second)
		p := b.get(t, r.authURL(extra))
		loc, mfa := e.signIn(t, b, p, true)
		if !mfa {
			t.Fatalf("%s: no second factor asked", name)
		}
		res := r.deliver(t, loc)
		if res.err != nil || res.claims.AuthTime <= first.claims.AuthTime || res.claims.CameraSerial != "BC4-A" {
			t.Fatalf("%s: %+v %v", name, res.claims, res.err)
		}
	}
	// A new day: the session is gone, the trusted browser remains.
	b.c.Jar.SetCookies(mustURL(e.issuer), []*http.Cookie{{Name: "camotp_session", Value: "", MaxAge: -1, Path: "/"}})
	loc, mfa := e.signIn(t, b, b.get(t, r.authURL(nil)), false)
	res := r.deliver(t, loc)
	if mfa || res.err != nil || !slices.Equal(res.claims.AMR, []string{"pwd"}) || res.claims.ACR != "pwd" {
		t.Fatalf("trusted browser: mfa %v, %+v %v", mfa, res.claims, res.err)
	}
	b.c.Jar.SetCookies(mustURL(e.issuer), []*http.Cookie{{Name: "camotp_session", Value: "", MaxAge: -1, Path: "/"}})
	e.clock.Add(30 * time.Second)
	loc, mfa = e.signIn(t, b, b.get(t, r.authURL(url.Values{"acr_values": {"mfa"}})), false)
	res = r.deliver(t, loc)
	if !mfa || res.err != nil || res.claims.ACR != "mfa" {
		t.Fatalf("acr_values=mfa: mfa %v, %+v %v", mfa, res.claims, res.err)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// Discovery names the endpoints and offers S256 only.
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	status, doc := testenv.API(t, e.srv, "", "GET", "/.well-known/openid-configuration", nil)
	if status != http.StatusOK || doc["issuer"] != e.issuer {
		t.Fatalf("%d %v", status, doc)
	}
	for k, want := range map[string]string{"authorization_endpoint": "/oidc/authorize", "token_endpoint": "/oidc/token",
		"jwks_uri": "/oidc/keys", "userinfo_endpoint": "/oidc/userinfo", "revocation_endpoint": "/oidc/revoke",
		"end_session_endpoint": "/oidc/end_session"} {
		if doc[k] != e.issuer+want {
			t.Errorf("%s = %v", k, doc[k])
		}
	}
	if m, _ := doc["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("code_challenge_methods_supported %v", doc["code_challenge_methods_supported"])
	}
}

// rotate-key: ID tokens are then signed with the new ES256 key, and a
// token signed before with the old RS256 key still verifies (the old key
// stays in the JWKS until its tokens expire).
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	signIn := func() result {
		b := newBrowser(t, e)
		loc, _ := e.signIn(t, b, b.get(t, r.authURL(nil)), false)
		res := r.deliver(t, loc)
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res
	}
	alg := func(res result) string {
		raw, _ := res.token.Extra("id_token").(string)
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.Algorithm
	}
	old := signIn()
	if alg(old) != "RS256" {
		t.Fatalf("first key signs %s", alg(old))
	}
	status, body := testenv.API(t, e.srv, e.srv.AdminToken, "POST", "/api/v1/admin/oidc/keys", map[string]string{"alg": "ES256"})
	if status != http.StatusCreated {
		t.Fatalf("rotate: %d %v", status, body)
	}
	e.clock.Add(30 * time.Second)
	if got := signIn(); alg(got) != "ES256" {
		t.Fatalf("after rotation the ID token is signed %s", alg(got))
	}
	raw, _ := old.token.Extra("id_token").(string)
	if _, err := r.verifier.Verify(context.Background(), raw); err != nil {
		t.Fatalf("token signed before the rotation: %v", err)
	}
}
