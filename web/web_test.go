package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
)

type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, f *testenv.Fleet) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: "http://" + f.Srv.HTTPAddr(), c: &http.Client{Jar: jar}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) post(path string, form url.Values, page string) (int, string, *http.Response) {
	b.t.Helper()
	if m := csrfRE.FindStringSubmatch(page); m != nil && form.Get("csrf") == "" {
		form.Set("csrf", m[1])
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

func TestWebSignInFlow(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	status, page, resp := b.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, page)
	if status != 200 || resp.Request.URL.Path != "/mfa" {
		t.Fatalf("login: %d at %s", status, resp.Request.URL.Path)
	}
	for _, want := range []string{"Verification Code", "Show me how to find it", "Double-press Select", "Body 4", "Keep me signed in"} {
		if !strings.Contains(page, want) {
			t.Fatalf("MFA page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Long-press Program") {
		t.Fatal("Body 4 user shown Body 3 steps")
	}
	status, page, _ = b.post("/mfa", url.Values{"code": {"000000"}}, page)
	if status != 401 || !strings.Contains(page, "Invalid one-time password (attempts left: 2)") {
		t.Fatalf("wrong code: %d\n%s", status, page)
	}
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	status, page, resp = b.post("/mfa", url.Values{"code": {code}}, page)
	if status != 200 || resp.Request.URL.Path != "/home" || !strings.Contains(page, "signed in as <strong>alice</strong>") {
		t.Fatalf("code: %d at %s\n%s", status, resp.Request.URL.Path, page)
	}
	// Cookies: HttpOnly, SameSite, no Secure on plain HTTP.
	u, _ := url.Parse(b.base)
	names := map[string]bool{}
	for _, c := range b.c.Jar.Cookies(u) {
		names[c.Name] = true
	}
	if !names["camotp_session"] || names["camotp_trust"] {
		t.Fatalf("cookies after sign-in: %v", names)
	}
	// Sign out ends the session.
	status, _, resp = b.post("/logout", url.Values{}, page)
	if status != 200 || resp.Request.URL.Path != "/login" {
		t.Fatalf("logout: %d %s", status, resp.Request.URL.Path)
	}
	if _, page := b.get("/home"); !strings.Contains(page, "Sign in") {
		t.Fatal("home still reachable after sign-out")
	}
}

func TestWebHowToPerModel(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, _ = b.post("/login", url.Values{"username": {"bob"}, "password": {"pw-bob-long"}}, page)
	if !strings.Contains(page, "Long-press Program") || !strings.Contains(page, "Body 3") || strings.Contains(page, "Double-press") {
		t.Fatalf("Body 3 steps:\n%s", page)
	}
}

func TestWebKeepMeSignedIn(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, _ = b.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, page)
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	_, page, _ = b.post("/mfa", url.Values{"code": {code}, "keep": {"on"}}, page)
	_, _, _ = b.post("/logout", url.Values{}, page)
	// Next sign-in on this browser skips MFA.
	_, page = b.get("/login")
	status, _, resp := b.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, page)
	if status != 200 || resp.Request.URL.Path != "/home" {
		t.Fatalf("trusted browser still asked for MFA: %s", resp.Request.URL.Path)
	}
	// Another user on the same browser is not trusted.
	b.post("/logout", url.Values{}, page)
	_, page = b.get("/login")
	_, _, resp = b.post("/login", url.Values{"username": {"bob"}, "password": {"pw-bob-long"}}, page)
	if resp.Request.URL.Path != "/mfa" {
		t.Fatal("trust cookie of alice skipped bob's MFA")
	}
	// After the trust period MFA is asked again.
	b2 := newBrowser(t, f)
	_, page = b2.get("/login")
	_, page, _ = b2.post("/login", url.Values{"username": {"bob"}, "password": {"pw-bob-long"}}, page)
	_, page, _ = b2.post("/mfa", url.Values{"code": {testenv.ScreenCode(t, f.Cams["bob"], f.Clock.Now())}, "keep": {"on"}}, page)
	f.Clock.Add(7*24*time.Hour + time.Minute)
	b2.post("/logout", url.Values{}, page)
	_, page = b2.get("/login")
	_, _, resp = b2.post("/login", url.Values{"username": {"bob"}, "password": {"pw-bob-long"}}, page)
	if resp.Request.URL.Path != "/mfa" {
		t.Fatal("trust outlived --trust-for")
	}
}

func TestWebCSRF(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	// Missing or wrong token.
	for _, tok := range []string{"", "forged"} {
		form := url.Values{"username": {"alice"}, "password": {"pw-alice-long"}, "csrf": {tok}}
		if tok == "" {
			form.Set("csrf", "x")
			form.Del("csrf")
		}
		req, _ := http.NewRequest("POST", b.base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("csrf %q: %d", tok, resp.StatusCode)
		}
	}
	// A cross-site POST with a valid token is refused by origin checks.
	m := csrfRE.FindStringSubmatch(page)
	form := url.Values{"username": {"alice"}, "password": {"pw-alice-long"}, "csrf": {m[1]}}
	req, _ := http.NewRequest("POST", b.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
	// Security headers.
	r2, _ := b.c.Get(b.base + "/login")
	r2.Body.Close()
	if !strings.Contains(r2.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || r2.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", r2.Header)
	}
}

// Trust ends when an admin forgets the user's devices or changes the password.
func TestWebTrustEndsOnAdminActions(t *testing.T) {
	f := testenv.NewFleet(t)
	for _, action := range []struct {
		path string
		body any
		pw   string
	}{
		{"/api/v1/admin/users/alice/forget-devices", nil, "pw-alice-long"},
		{"/api/v1/admin/users/alice/password", map[string]string{"password": "a brand new password"}, "a brand new password"},
	} {
		b := newBrowser(t, f)
		_, page := b.get("/login")
		_, page, _ = b.post("/login", url.Values{"username": {"alice"}, "password": {currentPW(f)}}, page)
		f.Clock.Add(31 * time.Second) // a fresh code for each round
		_, page, resp := b.post("/mfa", url.Values{"code": {testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())}, "keep": {"on"}}, page)
		if resp.Request.URL.Path != "/home" {
			t.Fatalf("sign-in failed before %s", action.path)
		}
		if status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", action.path, action.body); status != 200 {
			t.Fatalf("%s: %d %v", action.path, status, body)
		}
		f.PW = action.pw
		// The session ended too.
		if _, home := b.get("/home"); !strings.Contains(home, "Sign in") {
			t.Fatalf("session survived %s", action.path)
		}
		_, page = b.get("/login")
		_, _, resp = b.post("/login", url.Values{"username": {"alice"}, "password": {currentPW(f)}}, page)
		if resp.Request.URL.Path != "/mfa" {
			t.Fatalf("trusted browser survived %s", action.path)
		}
	}
}

func currentPW(f *testenv.Fleet) string {
	if f.PW != "" {
		return f.PW
	}
	return "pw-alice-long"
}

var secretRE = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)

// TestWebSecurityPage: alice (Body 4) adds an app, switches it for another
// (remove + set up again), removes it, and changes her password, which
// ends her other sessions and trusted browsers.
func TestWebSecurityPage(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, _ = b.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, page)
	_, page, _ = b.post("/mfa", url.Values{"code": {testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())}, "keep": {"on"}}, page)
	status, page := b.get("/security")
	if status != 200 || !strings.Contains(page, `id="m-bodycam"`) || !strings.Contains(page, "Body 4") || strings.Contains(page, `id="m-app"`) {
		t.Fatalf("security page: %d\n%s", status, page)
	}
	addApp := func(page string) (string, string) {
		t.Helper()
		_, page, _ = b.post("/security/app/start", url.Values{}, page)
		m := secretRE.FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
			t.Fatalf("no key or QR code:\n%s", page)
		}
		f.Clock.Add(30 * time.Second) // a fresh step for each first code
		status, page, _ := b.post("/security/app/confirm", url.Values{"code": {testenv.AppCode(t, m[1], f.Clock.Now())}}, page)
		if status != 200 || !strings.Contains(page, "Authenticator app set up.") || !strings.Contains(page, `id="m-app"`) {
			t.Fatalf("confirm: %d\n%s", status, page)
		}
		return m[1], page
	}
	first, page := addApp(page)
	second, page := addApp(page) // switch to another app
	if first == second {
		t.Fatal("switching apps reused the key")
	}
	seed, err := f.Srv.Store.AppSeed(t.Context(), "alice")
	if err != nil || seed.Base32() != second {
		t.Fatalf("stored app is not the second one (%v)", err)
	}
	status, page, _ = b.post("/security/app/remove", url.Values{}, page)
	if status != 200 || strings.Contains(page, `id="m-app"`) {
		t.Fatalf("remove: %d\n%s", status, page)
	}
	// Password: the wrong current one is refused; the right one changes it.
	status, page, _ = b.post("/security/password", url.Values{"current": {"nope"}, "new": {"a brand new long password"}}, page)
	if status != 401 && status != 400 || !strings.Contains(page, "invalid username or password") {
		t.Fatalf("wrong current password: %d\n%s", status, page)
	}
	other := newBrowser(t, f) // a second session of alice
	_, p2 := other.get("/login")
	_, p2, _ = other.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, p2)
	f.Clock.Add(30 * time.Second)
	other.post("/mfa", url.Values{"code": {testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())}}, p2)
	if _, p := other.get("/home"); !strings.Contains(p, "signed in as") {
		t.Fatal("second session did not start")
	}
	status, page, _ = b.post("/security/password", url.Values{"current": {"pw-alice-long"}, "new": {"a brand new long password"}}, page)
	if status != 200 || !strings.Contains(page, "Password changed.") {
		t.Fatalf("change password: %d\n%s", status, page)
	}
	if _, p := other.get("/home"); strings.Contains(p, "signed in as") {
		t.Fatal("other session survived the password change")
	}
	if _, p := b.get("/home"); !strings.Contains(p, "signed in as") {
		t.Fatal("the session that changed the password was signed out")
	}
	if status, _ := f.Login(t, "alice", "a brand new long password"); status != 200 {
		t.Fatalf("new password: %d", status)
	}
}

// TestWebAdminPage: an administrator who passed MFA manages the policy and
// users; a non-admin, or an admin signed in with the password alone (MFA
// off), is refused.
func TestWebAdminPage(t *testing.T) {
	f := testenv.NewFleet(t)
	status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", "/api/v1/admin/users",
		map[string]string{"username": "chief", "email": "chief@pd.example", "password": "pw-chief-long", "role": "admin"})
	if status != 201 {
		t.Fatalf("add admin: %d %v", status, body)
	}
	svc := f.Srv.SignIn
	enr, _ := svc.StartApp(t.Context(), "chief")
	if err := svc.ConfirmApp(t.Context(), "chief", testenv.AppCode(t, enr.Secret, f.Clock.Now()), ""); err != nil {
		t.Fatal(err)
	}
	signIn := func(user, code string) *browser {
		b := newBrowser(t, f)
		_, page := b.get("/login")
		_, page, _ = b.post("/login", url.Values{"username": {user}, "password": {"pw-" + user + "-long"}}, page)
		if code != "" {
			b.post("/mfa", url.Values{"code": {code}}, page)
		}
		return b
	}
	// alice is no admin.
	if status, _ := signIn("alice", testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())).get("/admin"); status != 403 {
		t.Fatalf("non-admin: %d", status)
	}
	f.Clock.Add(30 * time.Second)
	b := signIn("chief", testenv.AppCode(t, enr.Secret, f.Clock.Now()))
	status, page := b.get("/admin/users")
	if status != 200 || !strings.Contains(page, `id="user-carol"`) {
		t.Fatalf("users page: %d\n%s", status, page)
	}
	status, page = b.get("/admin/users?without=1")
	if status != 200 || !strings.Contains(page, `id="user-dave"`) || strings.Contains(page, `id="user-alice"`) {
		t.Fatalf("without MFA: %d\n%s", status, page)
	}
	status, page = b.get("/admin/policy")
	if status != 200 || !strings.Contains(page, `id="method-app" checked`) {
		t.Fatalf("policy page: %d\n%s", status, page)
	}
	// An invalid policy is refused with the reason; a valid one is saved.
	status, page, _ = b.post("/admin/policy", url.Values{"require": {"on"}}, page)
	if status != 400 || !strings.Contains(page, "enable from one to five methods") {
		t.Fatalf("empty policy: %d\n%s", status, page)
	}
	status, page, _ = b.post("/admin/policy", url.Values{"method": {"bodycam", "app"}}, page)
	if pol, _ := svc.Policy(t.Context()); status != 200 || pol.RequireMFA || !strings.Contains(page, "Policy saved.") {
		t.Fatalf("save policy: %d %+v\n%s", status, pol, page)
	}
	// With MFA off, an admin with no method (deputy) signs in with the
	// password alone; such a session does not reach the admin pages.
	if status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", "/api/v1/admin/users",
		map[string]string{"username": "deputy", "email": "deputy@pd.example", "password": "pw-deputy-long", "role": "admin"}); status != 201 {
		t.Fatalf("add admin deputy: %d %v", status, body)
	}
	if status, page := signIn("deputy", "").get("/admin"); status != 403 || !strings.Contains(page, "signed in with a second factor") {
		t.Fatalf("password-only admin session: %d\n%s", status, page)
	}
	// Not the admin's own MFA (that would leave the account to its
	// password); an officer's, from the page.
	status, _, _ = b.post("/admin/users/chief/reset-mfa", url.Values{}, page)
	if _, err := f.Srv.Store.AppSeed(t.Context(), "chief"); status != 403 || err != nil {
		t.Fatalf("reset of the admin's own MFA: %d, app %v", status, err)
	}
	status, page, _ = b.post("/admin/users/bob/reset-mfa", url.Values{}, page)
	if status != 200 || !strings.Contains(page, "MFA of bob reset.") {
		t.Fatalf("reset from the page: %d\n%s", status, page)
	}
}

// The page and the API share the counters: two wrong codes on the page and
// one through the API block the pair; the page says so with Retry-After.
func TestWebLockoutSharedWithAPI(t *testing.T) {
	f := testenv.NewFleet(t)
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, _ = b.post("/login", url.Values{"username": {"alice"}, "password": {"pw-alice-long"}}, page)
	wrong := f.WrongCode(t, "alice")
	for range 2 {
		if status, _, _ := b.post("/mfa", url.Values{"code": {wrong}}, page); status != 401 {
			t.Fatalf("wrong code on the page: %d", status)
		}
	}
	if status, _ := f.Verify(t, f.Pending(t, "alice"), wrong); status != 429 {
		t.Fatalf("third wrong code, through the API: %d, want 429", status)
	}
	status, body, resp := b.post("/mfa", url.Values{"code": {testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())}}, page)
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if status != 429 || retry < 540 || retry > 600 ||
		!strings.Contains(body, "You have reached the limit of attempts. Please try again in 10 minutes or ask your administrator to unblock you.") ||
		!strings.Contains(body, `id="code" name="code" inputmode="numeric" pattern="[0-9]{6,8}" maxlength="8" autocomplete="one-time-code" required disabled`) {
		t.Fatalf("right code on the page after the block: %d Retry-After %q\n%s", status, resp.Header.Get("Retry-After"), body)
	}
}
