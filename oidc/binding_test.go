package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An auth request belongs to the browser the application sent to camotp.
// The attack it stops (found by attacking the provider): start a request
// in your own browser, get a signed-in officer's browser to open its
// sign-in link, collect the code from the callback — and be signed in to
// the records system as the officer.
func TestAuthRequestBoundToBrowser(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	victim := newBrowser(t, e)
	if _, mfa := e.signIn(t, victim, victim.get(t, r.authURL(nil)), false); !mfa {
		t.Fatal("victim's first sign-in asked no second factor")
	}

	attacker := newBrowser(t, e)
	p := attacker.get(t, r.authURL(nil))
	id := p.url.Query().Get("authRequest")
	if p.url.Path != "/login" || id == "" {
		t.Fatalf("attacker's authorize: at %s", p.url)
	}
	link := e.issuer + "/login?authRequest=" + url.QueryEscape(id)
	got := victim.get(t, link)
	if got.location != nil || got.status != 403 || !strings.Contains(got.body, "started in another browser") {
		t.Fatalf("victim opened the attacker's sign-in link: %d, redirect %v\n%s", got.status, got.location, got.body)
	}
	// The request is not answered: neither callback hands out a code.
	for name, b := range map[string]*browser{"attacker": attacker, "victim": victim} {
		cb := b.get(t, e.issuer+"/oidc/authorize/callback?id="+url.QueryEscape(id))
		if cb.location != nil && cb.location.Query().Get("code") != "" {
			t.Fatalf("%s's callback got a code: %v", name, cb.location)
		}
	}
	// The browser that made the request can finish it (at the next code:
	// the victim's is spent).
	e.clock.Add(30 * time.Second)
	if loc, _ := e.signIn(t, attacker, attacker.get(t, link), false); loc.Query().Get("code") == "" {
		t.Fatalf("the browser that made the request could not finish it: %v", loc)
	}
}

// prompt=login is not met by a password-only sign-in on a trusted browser,
// even one made after the request (found by attacking the provider: sign in
// on /login without the request, then open the request's link).
func TestPromptLoginNotMetByTrustedBrowser(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	b := newBrowser(t, e)
	loc, _ := e.signIn(t, b, b.get(t, r.authURL(nil)), true) // keep me signed in
	if res := r.deliver(t, loc); res.err != nil {
		t.Fatal(res.err)
	}
	b.c.Jar.SetCookies(mustURL(e.issuer), []*http.Cookie{{Name: "camotp_session", Value: "", MaxAge: -1, Path: "/"}})
	e.clock.Add(30 * time.Second)
	p := b.get(t, r.authURL(url.Values{"prompt": {"login"}, "acr_values": {"mfa"}}))
	id := p.url.Query().Get("authRequest")
	// Around the request: a plain sign-in, where the trusted browser skips
	// the code.
	plain := b.get(t, e.issuer+"/login")
	if after := b.submit(t, plain, "/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}); after.url.Path == "/mfa" {
		t.Fatal("the trusted browser was asked for a code on a plain sign-in")
	}
	back := b.get(t, e.issuer+"/login?authRequest="+url.QueryEscape(id))
	if back.location != nil {
		t.Fatalf("a password-only session answered prompt=login: %v", back.location)
	}
	if back.url.Path != "/login" || back.status != 200 {
		t.Fatalf("want the sign-in page again, got %s (%d)", back.url, back.status)
	}
	// Signing in there asks for the code, and the client gets MFA.
	loc, mfa := e.signIn(t, b, back, false)
	res := r.deliver(t, loc)
	if !mfa || res.err != nil || res.claims.ACR != "mfa" {
		t.Fatalf("after signing in again: mfa %v, %+v %v", mfa, res.claims, res.err)
	}
}
