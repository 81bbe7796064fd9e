package oidc_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/camotp/camotp/internal/testenv"
)

// oauth2ProxyVersion is the oauth2-proxy the second relying party runs.
// .ci/run builds the same version into the same cache directory ahead of
// `make test`; keep the two in step.
const oauth2ProxyVersion = "v7.15.6"

// oauth2ProxyBin returns oauth2-proxy built from the Go module proxy into
// ${XDG_CACHE_HOME:-$HOME/.cache}/camotp/oauth2-proxy/VERSION, building it
// on first use (1.5–2 minutes on a 2-core machine with empty module and
// build caches); the test skips, saying why, only when the build fails.
func oauth2ProxyBin(t *testing.T) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "camotp", "oauth2-proxy", oauth2ProxyVersion)
	bin := filepath.Join(dir, "oauth2-proxy")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Install into a directory of its own, then rename: a concurrent run
	// never sees half a binary.
	gobin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(gobin)
	// Leave the test binary's -timeout (10 minutes by default, for the
	// whole package) room for the rest rather than panicking in the build.
	limit := time.Now().Add(15 * time.Minute)
	if d, ok := t.Deadline(); ok {
		limit = d.Add(-2 * time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "install", "github.com/oauth2-proxy/oauth2-proxy/v7@"+oauth2ProxyVersion)
	// Outside camotp's module, so its go.mod and go.sum are not touched.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod", "GOWORK=off")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("oauth2-proxy %s could not be built from the Go module proxy (go install, %v): %v\n%s",
			oauth2ProxyVersion, time.Since(start).Round(time.Second), err, tail(out, 2000))
	}
	if err := os.Rename(filepath.Join(gobin, "oauth2-proxy"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built oauth2-proxy %s from the Go module proxy in %v into %s", oauth2ProxyVersion, time.Since(start).Round(time.Second), dir)
	return bin
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// upstream is the application behind oauth2-proxy: it records every
// request it gets.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.mu.Unlock()
		fmt.Fprintf(w, `<!doctype html><p id="upstream-user">Evidence system: %s (%s) at %s</p>`,
			html.EscapeString(r.Header.Get("X-Forwarded-Preferred-Username")), html.EscapeString(r.Header.Get("X-Forwarded-Email")),
			html.EscapeString(r.URL.RequestURI()))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// requests are the requests the upstream got; pages only leaves out the
// browser's own /favicon.ico requests, which it makes at its leisure.
func (u *upstream) requests(pages bool) []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	var rs []*http.Request
	for _, r := range u.seen {
		if !pages || r.URL.Path != "/favicon.ico" {
			rs = append(rs, r)
		}
	}
	return rs
}

// proxy is a running oauth2-proxy.
type proxy struct {
	url      string // http://127.0.0.1:PORT
	clientID string
	out      *testenv.SyncBuffer
}

// startProxy registers oauth2-proxy as a confidential client of camotp and
// runs it in front of up, waiting (up to a minute) for its /ping. It is
// stopped at cleanup; its log is shown when the test fails.
func startProxy(t *testing.T, e *env, bin string, up *upstream) *proxy {
	t.Helper()
	addr := freeAddr(t)
	p := &proxy{url: "http://" + addr, clientID: "oauth2-proxy", out: &testenv.SyncBuffer{}}
	secret := e.addClient(t, p.clientID, false, p.url+"/oauth2/callback")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cookie := make([]byte, 32)
	rand.Read(cookie)
	cookieFile := filepath.Join(dir, "cookie-secret")
	if err := os.WriteFile(cookieFile, []byte(base64.URLEncoding.EncodeToString(cookie)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--provider=oidc",
		"--provider-display-name=camotp",
		"--oidc-issuer-url=" + e.issuer,
		"--client-id=" + p.clientID,
		"--client-secret-file=" + secretFile,
		"--redirect-url=" + p.url + "/oauth2/callback",
		"--scope=openid profile email",
		"--code-challenge-method=S256",
		"--insecure-oidc-skip-nonce=false", // check the nonce it sends
		"--cookie-secret-file=" + cookieFile,
		"--cookie-secure=false",                      // plain http on loopback
		"--cookie-expire=12h", "--cookie-refresh=1m", // as docs/integration.md advises
		"--email-domain=*",
		"--upstream=" + up.srv.URL + "/",
		"--http-address=" + addr,
		"--skip-provider-button",
		"--pass-user-headers=true",
		"--pass-basic-auth=false",
		"--pass-authorization-header", // the ID token, as Authorization: Bearer
		"--pass-access-token",         // X-Forwarded-Access-Token
		"--set-xauthrequest",
		"--reverse-proxy=false",
		"--silence-ping-logging",
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("oauth2-proxy log:\n%s", p.out)
		}
	})
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			t.Fatalf("oauth2-proxy exited at start (%v):\n%s", waitErr, p.out)
		default:
		}
		if resp, err := c.Get(p.url + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy not answering /ping after a minute:\n%s", p.out)
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// oauth2-proxy (built from its release on the Go module proxy) in front of
// an upstream application is camotp's second relying party. Without a
// sign-in it sends every request to camotp's authorize endpoint (PKCE
// S256, state, nonce) and never to the upstream; in headless Chromium the
// officer lands on camotp's sign-in page, stays there after a wrong camera
// code, and reaches the upstream, which sees who signed in, after the
// password and the code read off the Body 4 camera.
func TestOAuth2Proxy(t *testing.T) {
	bin := oauth2ProxyBin(t)
	e := newEnv(t)
	up := newUpstream(t)
	px := startProxy(t, e, bin, up)

	// No session: a redirect to camotp, never the upstream, also with a
	// forged session cookie.
	noFollow := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, cookie := range []string{"", "_oauth2_proxy=" + random(t)} {
		req, _ := http.NewRequest("GET", px.url+"/cases/42?tab=video", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.issuer+"/oidc/authorize?") {
			t.Fatalf("cookie %q: %d to %v, want 302 to camotp's authorize endpoint", cookie, resp.StatusCode, loc)
		}
		q := loc.Query()
		if q.Get("client_id") != px.clientID || q.Get("redirect_uri") != px.url+"/oauth2/callback" || q.Get("response_type") != "code" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
			!slices.Contains(strings.Fields(q.Get("scope")), "openid") {
			t.Fatalf("authorize request %s", loc)
		}
	}
	if n := len(up.requests(false)); n != 0 {
		t.Fatalf("the upstream was reached %d times without a sign-in", n)
	}

	ctx := testenv.Chromium(t)
	start := time.Now()
	err := chromedp.Do(ctx,
		chromedp.Navigate(px.url+"/cases/42?tab=video"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatal(err)
	}
	assertAtCamotp(t, ctx, e, "/login")
	if who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("client"))); err != nil || !strings.Contains(who, px.clientID) {
		t.Fatalf("sign-in page does not name the application: %q %v", who, err)
	}
	shot(t, ctx, "proxy-login")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "pw-alice-long"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("code")),
	)
	if err != nil {
		t.Fatal(err)
	}
	assertAtCamotp(t, ctx, e, "/mfa")

	// A wrong code: camotp's page says so and the browser stays there.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), wrongCode(t, e)),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
	if err != nil || msg != "Invalid one-time password (attempts left: 2)" {
		t.Fatalf("after a wrong code: %q %v", msg, err)
	}
	assertAtCamotp(t, ctx, e, "/mfa")
	shot(t, ctx, "proxy-wrong-code")
	if n := len(up.requests(false)); n != 0 {
		t.Fatalf("the upstream was reached %d times after a wrong code", n)
	}

	// The code on the camera (the page shows an empty field again):
	// through oauth2-proxy's callback to the page first asked for.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), testenv.ScreenCode(t, e.cam, e.clock.Now())),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("upstream-user")),
	)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	landed, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("upstream-user")))
	if err != nil || !strings.Contains(landed, "alice (alice@pd.example) at /cases/42?tab=video") {
		t.Fatalf("upstream page %q %v", landed, err)
	}
	where, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || where != px.url+"/cases/42?tab=video" {
		t.Fatalf("browser at %q %v", where, err)
	}
	shot(t, ctx, "proxy-upstream")
	t.Logf("oauth2-proxy sign-in in Chromium (proxy → authorize → password → wrong code → camera code → callback → upstream): %v", elapsed)

	// What the upstream saw: the user, and tokens that are camotp's.
	seen := up.requests(true)
	if len(seen) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(seen))
	}
	h := seen[0].Header
	u, _, err := e.srv.Store.User(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Forwarded-User") != u.Subject || h.Get("X-Forwarded-Email") != "alice@pd.example" || h.Get("X-Forwarded-Preferred-Username") != "alice" {
		t.Fatalf("upstream headers: user %q (sub %q) email %q preferred username %q", h.Get("X-Forwarded-User"), u.Subject,
			h.Get("X-Forwarded-Email"), h.Get("X-Forwarded-Preferred-Username"))
	}
	provider, err := gooidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatalf("no ID token passed upstream: Authorization %q", h.Get("Authorization"))
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: px.clientID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != u.Subject || !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "mfa") || c.ACR != "mfa" ||
		c.CameraModel != "Body 4" || c.CameraSerial != "BC4-A" || c.Nonce == "" {
		t.Fatalf("ID token oauth2-proxy got: %+v", c)
	}
	ui, err := provider.UserInfo(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: h.Get("X-Forwarded-Access-Token")}))
	if err != nil || ui.Subject != u.Subject {
		t.Fatalf("userinfo with the access token oauth2-proxy got: %+v %v", ui, err)
	}

	// The session cookie now gets the browser straight through, and only
	// this browser: another client is still sent to camotp.
	err = chromedp.Do(ctx,
		chromedp.Navigate(px.url+"/cases/43"),
		chromedp.WaitVisible(chromedp.ID("upstream-user")),
	)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noFollow.Get(px.url + "/cases/43")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.issuer+"/oidc/authorize?") {
		t.Fatalf("a client without the session: %d to %v", resp.StatusCode, loc)
	}
	if n := len(up.requests(true)); n != 2 {
		t.Fatalf("upstream got %d requests, want 2", n)
	}
}

// assertAtCamotp checks that the browser shows camotp's page at path.
func assertAtCamotp(t *testing.T, ctx context.Context, e *env, path string) {
	t.Helper()
	where, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(where)
	if err != nil || u.Scheme+"://"+u.Host != e.issuer || u.Path != path {
		t.Fatalf("browser at %s, want camotp's %s", where, path)
	}
}

// wrongCode is six digits that no nearby step of alice's camera shows.
func wrongCode(t *testing.T, e *env) string {
	t.Helper()
	now := e.clock.Now()
	near := map[string]bool{}
	for _, d := range []time.Duration{-60 * time.Second, -30 * time.Second, 0, 30 * time.Second, 60 * time.Second} {
		near[testenv.ScreenCode(t, e.cam, now.Add(d))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i*111111%1000000); !near[c] {
			return c
		}
	}
}
