package verifier_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/verifier"
)

// post calls the API (with the admin token on admin paths).
func (f *fleet) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	token := ""
	if strings.HasPrefix(path, "/api/v1/admin/") {
		token = f.srv.AdminToken
	}
	return testenv.API(t, f.srv, token, "POST", path, body)
}

// getList GETs an admin path answering a JSON array.
func (f *fleet) getList(t *testing.T, path string) (int, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.srv.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		ok      bool
	}{
		{[]string{"bodycam"}, true},
		{[]string{"app", "bodycam"}, true},
		{nil, false},
		{[]string{"bodycam", "bodycam"}, false},
		{[]string{"fax"}, false},
		{[]string{"sms", "call", "email"}, true},
		{[]string{"bodycam", "app", "sms", "call", "email", "app"}, false},
	} {
		err := verifier.Policy{RequireMFA: true, Methods: tc.methods}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.methods, err)
		}
	}
}

// appCode is the code an authenticator app shows for secret now
// (pquerna/otp, independent of the verifier's own checking loop).
func appCode(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret); err != nil {
		t.Fatalf("secret %q is not base32: %v", secret, err)
	}
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestFirstTimeSetupRules: product.md §1.3, one row per rule.
func TestFirstTimeSetupRules(t *testing.T) {
	f := newFleet(t)
	for _, tc := range []struct {
		name    string
		require bool
		methods []string
		user    string
		want    string // authenticator, "403" for no method, "session" for no MFA step
		setup   string
	}{
		{"camera assigned: available without enrolment", true, []string{"bodycam", "app"}, "alice", "bodycam", ""},
		{"camera enabled but none assigned: must set up the app", true, []string{"bodycam", "app"}, "dave", "setup", "[app]"},
		{"camera assigned but unprovisioned: must set up the app", true, []string{"bodycam", "app"}, "carol", "setup", "[app]"},
		{"org without cameras: a camera user must set up the app", true, []string{"app"}, "alice", "setup", "[app]"},
		{"nothing the user can set up: no method", true, []string{"bodycam"}, "dave", "403", ""},
		{"MFA not required, user without a method: password only", false, []string{"bodycam", "app"}, "dave", "session", ""},
		{"MFA not required, user with a camera: still challenged", false, []string{"bodycam", "app"}, "alice", "bodycam", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.setPolicy(t, tc.require, tc.methods...)
			status, body := f.login(t, tc.user, "pw-"+tc.user+"-long")
			switch tc.want {
			case "403":
				if status != 403 {
					t.Fatalf("%d %v", status, body)
				}
			case "session":
				if status != 200 || body["sessionToken"] == nil || body["token"] != "" {
					t.Fatalf("%d %v", status, body)
				}
			default:
				if status != 200 || body["authenticator"] != tc.want || (tc.setup != "" && fmt.Sprint(body["setupMethods"]) != tc.setup) {
					t.Fatalf("%d %v", status, body)
				}
			}
		})
	}
}

// TestAppSetupAtSignInThenSignIn: dave has no camera; he must set up an app
// at sign-in, is signed in by its first code, and signs in with it after.
func TestAppSetupAtSignInThenSignIn(t *testing.T) {
	f := newFleet(t)
	_, body := f.login(t, "dave", "pw-dave-long")
	tok := body["token"].(string)
	// Verifying before setting up is refused.
	if status, _ := f.verify(t, tok, "123456"); status != 403 {
		t.Fatalf("verify before setup: %d", status)
	}
	status, setup := f.post(t, "/api/v1/auth/setup/app", map[string]string{"token": tok})
	if status != 200 || !strings.HasPrefix(setup["uri"].(string), "otpauth://totp/camotp:dave?") || setup["qrPng"] == "" {
		t.Fatalf("setup: %d %v", status, setup)
	}
	secret := setup["secret"].(string)
	// A wrong first code does not set it up.
	if status, _ := f.post(t, "/api/v1/auth/setup/confirm", map[string]string{"token": tok, "code": "000000"}); status != 401 {
		t.Fatalf("wrong first code: %d", status)
	}
	if m, _ := f.srv.Store.Methods(t.Context(), "dave"); len(m) != 0 {
		t.Fatalf("app saved before a valid code: %v", m)
	}
	first := appCode(t, secret, f.clock.Now())
	status, done := f.post(t, "/api/v1/auth/setup/confirm", map[string]string{"token": tok, "code": first})
	if status != 200 || done["sessionToken"] == nil {
		t.Fatalf("confirm: %d %v", status, done)
	}
	// Next sign-in: the app is the method, and the code just used is spent.
	_, body = f.login(t, "dave", "pw-dave-long")
	if body["authenticator"] != "app" || fmt.Sprint(body["methods"]) != "[app]" {
		t.Fatalf("login after setup: %v", body)
	}
	tok = body["token"].(string)
	if status, _ := f.verify(t, tok, first); status != 401 {
		t.Fatalf("setup code replayed: %d", status)
	}
	f.clock.add(30 * time.Second)
	if status, body := f.verify(t, tok, appCode(t, secret, f.clock.Now())); status != 200 {
		t.Fatalf("app code: %d %v", status, body)
	}
	// Disabled by the organisation: the app no longer verifies.
	f.setPolicy(t, true, "bodycam")
	f.clock.add(30 * time.Second)
	if status, body := f.login(t, "dave", "pw-dave-long"); status != 403 {
		t.Fatalf("app disabled: %d %v", status, body)
	}
}

// TestLastUsedMethodAndOtherOptions: alice has a camera and sets up an app;
// the challenge opens with the method she used last.
func TestLastUsedMethodAndOtherOptions(t *testing.T) {
	f := newFleet(t)
	svc := f.srv.Verifier
	enr, err := svc.StartApp(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ConfirmApp(t.Context(), "alice", appCode(t, enr.Secret, f.clock.Now()), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, body := f.login(t, "alice", "pw-alice-long")
	if body["authenticator"] != "bodycam" || fmt.Sprint(body["methods"]) != "[bodycam app]" {
		t.Fatalf("first: %v", body)
	}
	f.clock.add(30 * time.Second)
	status, out := f.post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "app", "code": appCode(t, enr.Secret, f.clock.Now())})
	if status != 200 {
		t.Fatalf("verify with the other option: %d %v", status, out)
	}
	_, body = f.login(t, "alice", "pw-alice-long")
	if body["authenticator"] != "app" {
		t.Fatalf("challenge should open with the last used method: %v", body)
	}
	// A camera code typed as an app code is refused: each method checks its own seed.
	camCode := testenv.ScreenCode(t, f.cams["alice"], f.clock.Now())
	if camCode != appCode(t, enr.Secret, f.clock.Now()) {
		if status, _ := f.post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "app", "code": camCode}); status != 401 {
			t.Fatalf("camera code accepted as app code: %d", status)
		}
	}
	// A method the user does not have is refused.
	if status, _ := f.post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "sms", "code": "123456"}); status != 403 {
		t.Fatalf("unknown method: %d", status)
	}
}

func TestBackupCodes(t *testing.T) {
	f := newFleet(t)
	svc := f.srv.Verifier
	codes, err := svc.NewBackupCodes(t.Context(), "alice", "127.0.0.1")
	if err != nil || len(codes) != verifier.BackupCodeCount {
		t.Fatalf("%v %v", codes, err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(codes)))) != len(codes) {
		t.Fatal("duplicate backup codes")
	}
	use := func(code string) int {
		_, body := f.login(t, "alice", "pw-alice-long")
		if !slices.Contains(body["methods"].([]any), any("backup")) {
			t.Fatalf("backup not offered: %v", body)
		}
		status, _ := f.post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "backup", "code": code})
		return status
	}
	if s := use(strings.ToUpper(codes[0])); s != 200 { // case and dash do not matter
		t.Fatalf("backup code: %d", s)
	}
	if s := use(codes[0]); s != 401 {
		t.Fatalf("backup code reused: %d", s)
	}
	if n, _ := f.srv.Store.BackupCodesLeft(t.Context(), "alice"); n != verifier.BackupCodeCount-1 {
		t.Fatalf("%d left", n)
	}
	// Regenerating replaces all: an old unused code dies.
	if _, err := svc.NewBackupCodes(t.Context(), "alice", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if s := use(codes[1]); s != 401 {
		t.Fatalf("old code after regenerate: %d", s)
	}
	// Stored as keyed hashes (HMAC under the master key), never the code
	// or its plain SHA-256.
	rows, err := f.srv.Store.DB().Query(`SELECT hash FROM backup_codes WHERE username = 'alice'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var h []byte
		rows.Scan(&h)
		n++
		for _, c := range codes {
			plain := strings.ToUpper(strings.ReplaceAll(c, "-", ""))
			sum := sha256.Sum256([]byte("alice\x00" + plain))
			if len(h) != 32 || bytes.Contains(h, []byte(plain)) || bytes.Equal(h, sum[:]) {
				t.Fatalf("backup code stored unkeyed: %x", h)
			}
		}
	}
	if n != verifier.BackupCodeCount {
		t.Fatalf("%d stored codes", n)
	}
}

// TestAdminResetAndOverview: reset-mfa drops the app and backup codes; the
// overview lists users without MFA.
func TestAdminResetAndOverview(t *testing.T) {
	f := newFleet(t)
	svc := f.srv.Verifier
	enr, _ := svc.StartApp(t.Context(), "dave")
	if err := svc.ConfirmApp(t.Context(), "dave", appCode(t, enr.Secret, f.clock.Now()), ""); err != nil {
		t.Fatal(err)
	}
	svc.NewBackupCodes(t.Context(), "dave", "")
	without := func() string {
		status, body := f.getList(t, "/api/v1/admin/mfa/users?without=1")
		if status != 200 {
			t.Fatalf("overview: %d", status)
		}
		var names []string
		for _, u := range body {
			names = append(names, u["username"].(string))
		}
		return strings.Join(names, ",")
	}
	if got := without(); got != "carol" {
		t.Fatalf("without MFA: %q, want carol (unprovisioned camera)", got)
	}
	status, body := f.post(t, "/api/v1/admin/users/dave/reset-mfa", nil)
	if status != 200 {
		t.Fatalf("reset: %d %v", status, body)
	}
	if got := without(); got != "carol,dave" {
		t.Fatalf("without MFA after reset: %q", got)
	}
	if n, _ := f.srv.Store.BackupCodesLeft(t.Context(), "dave"); n != 0 {
		t.Fatalf("backup codes survive reset: %d", n)
	}
	if status, _ := f.post(t, "/api/v1/admin/users/nobody/reset-mfa", nil); status != 404 {
		t.Fatalf("unknown user: %d", status)
	}
	// Audit: enrolment and reset are logged.
	entries, _ := f.srv.Store.AuditLog(t.Context(), "dave", 100)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+":"+e.Result)
	}
	for _, want := range []string{"mfa.app.add:ok", "mfa.backup.regenerate:ok", "user.reset-mfa:ok"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
}
