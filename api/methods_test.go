package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// TestFirstTimeSetupRules: product.md §1.3, one row per rule.
func TestFirstTimeSetupRules(t *testing.T) {
	f := testenv.NewFleet(t)
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
			f.SetPolicy(t, tc.require, tc.methods...)
			status, body := f.Login(t, tc.user, "pw-"+tc.user+"-long")
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
	f := testenv.NewFleet(t)
	_, body := f.Login(t, "dave", "pw-dave-long")
	tok := body["token"].(string)
	// Verifying before setting up is refused.
	if status, _ := f.Verify(t, tok, "123456"); status != 403 {
		t.Fatalf("verify before setup: %d", status)
	}
	status, setup := f.Post(t, "/api/v1/auth/setup/app", map[string]string{"token": tok})
	if status != 200 || !strings.HasPrefix(setup["uri"].(string), "otpauth://totp/camotp:dave?") || setup["qrPng"] == "" {
		t.Fatalf("setup: %d %v", status, setup)
	}
	secret := setup["secret"].(string)
	// A wrong first code does not set it up.
	if status, _ := f.Post(t, "/api/v1/auth/setup/confirm", map[string]string{"token": tok, "code": "000000"}); status != 401 {
		t.Fatalf("wrong first code: %d", status)
	}
	if m, _ := f.Srv.Store.Methods(t.Context(), "dave"); len(m) != 0 {
		t.Fatalf("app saved before a valid code: %v", m)
	}
	first := testenv.AppCode(t, secret, f.Clock.Now())
	status, done := f.Post(t, "/api/v1/auth/setup/confirm", map[string]string{"token": tok, "code": first})
	if status != 200 || done["sessionToken"] == nil {
		t.Fatalf("confirm: %d %v", status, done)
	}
	// Next sign-in: the app is the method, and the code just used is spent.
	_, body = f.Login(t, "dave", "pw-dave-long")
	if body["authenticator"] != "app" || fmt.Sprint(body["methods"]) != "[app]" {
		t.Fatalf("login after setup: %v", body)
	}
	tok = body["token"].(string)
	if status, _ := f.Verify(t, tok, first); status != 401 {
		t.Fatalf("setup code replayed: %d", status)
	}
	f.Clock.Add(30 * time.Second)
	if status, body := f.Verify(t, tok, testenv.AppCode(t, secret, f.Clock.Now())); status != 200 {
		t.Fatalf("app code: %d %v", status, body)
	}
	// Disabled by the organisation: the app no longer verifies.
	f.SetPolicy(t, true, "bodycam")
	f.Clock.Add(30 * time.Second)
	if status, body := f.Login(t, "dave", "pw-dave-long"); status != 403 {
		t.Fatalf("app disabled: %d %v", status, body)
	}
}

// TestLastUsedMethodAndOtherOptions: alice has a camera and sets up an app;
// the challenge opens with the method she used last.
func TestLastUsedMethodAndOtherOptions(t *testing.T) {
	f := testenv.NewFleet(t)
	svc := f.Srv.SignIn
	enr, err := svc.StartApp(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.ConfirmApp(t.Context(), "alice", testenv.AppCode(t, enr.Secret, f.Clock.Now()), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, body := f.Login(t, "alice", "pw-alice-long")
	if body["authenticator"] != "bodycam" || fmt.Sprint(body["methods"]) != "[bodycam app]" {
		t.Fatalf("first: %v", body)
	}
	f.Clock.Add(30 * time.Second)
	status, out := f.Post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "app", "code": testenv.AppCode(t, enr.Secret, f.Clock.Now())})
	if status != 200 {
		t.Fatalf("verify with the other option: %d %v", status, out)
	}
	_, body = f.Login(t, "alice", "pw-alice-long")
	if body["authenticator"] != "app" {
		t.Fatalf("challenge should open with the last used method: %v", body)
	}
	// A camera code typed as an app code is refused: each method checks its own seed.
	camCode := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	if camCode != testenv.AppCode(t, enr.Secret, f.Clock.Now()) {
		if status, _ := f.Post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "app", "code": camCode}); status != 401 {
			t.Fatalf("camera code accepted as app code: %d", status)
		}
	}
	// A method the user does not have is refused.
	if status, _ := f.Post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "sms", "code": "123456"}); status != 403 {
		t.Fatalf("unknown method: %d", status)
	}
}

func TestBackupCodes(t *testing.T) {
	f := testenv.NewFleet(t)
	svc := f.Srv.SignIn
	codes, err := svc.NewBackupCodes(t.Context(), "alice", "127.0.0.1")
	if err != nil || len(codes) != signin.BackupCodeCount {
		t.Fatalf("%v %v", codes, err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(codes)))) != len(codes) {
		t.Fatal("duplicate backup codes")
	}
	use := func(code string) int {
		_, body := f.Login(t, "alice", "pw-alice-long")
		if !slices.Contains(body["methods"].([]any), any("backup")) {
			t.Fatalf("backup not offered: %v", body)
		}
		status, _ := f.Post(t, "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "method": "backup", "code": code})
		return status
	}
	if s := use(strings.ToUpper(codes[0])); s != 200 { // case and dash do not matter
		t.Fatalf("backup code: %d", s)
	}
	if s := use(codes[0]); s != 401 {
		t.Fatalf("backup code reused: %d", s)
	}
	if n, _ := f.Srv.Store.BackupCodesLeft(t.Context(), "alice"); n != signin.BackupCodeCount-1 {
		t.Fatalf("%d left", n)
	}
	// Regenerating replaces all: an old unused code dies.
	if _, err := svc.NewBackupCodes(t.Context(), "alice", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if s := use(codes[1]); s != 401 {
		t.Fatalf("old code after regenerate: %d", s)
	}
	// (How they are kept at rest — keyed hashes — is the store's test:
	// sqlite TestBackupCodesKeyedAtRest.)
	if n, err := f.Srv.Store.BackupCodesLeft(t.Context(), "alice"); err != nil || n != signin.BackupCodeCount {
		t.Fatalf("%d codes after regenerating (%v)", n, err)
	}
}

// TestAdminResetAndOverview: reset-mfa drops the app and backup codes; the
// overview lists users without MFA.
func TestAdminResetAndOverview(t *testing.T) {
	f := testenv.NewFleet(t)
	svc := f.Srv.SignIn
	enr, _ := svc.StartApp(t.Context(), "dave")
	if err := svc.ConfirmApp(t.Context(), "dave", testenv.AppCode(t, enr.Secret, f.Clock.Now()), ""); err != nil {
		t.Fatal(err)
	}
	svc.NewBackupCodes(t.Context(), "dave", "")
	without := func() string {
		status, body := f.GetList(t, "/api/v1/admin/mfa/users?without=1")
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
	status, body := f.Post(t, "/api/v1/admin/users/dave/reset-mfa", nil)
	if status != 200 {
		t.Fatalf("reset: %d %v", status, body)
	}
	if got := without(); got != "carol,dave" {
		t.Fatalf("without MFA after reset: %q", got)
	}
	if n, _ := f.Srv.Store.BackupCodesLeft(t.Context(), "dave"); n != 0 {
		t.Fatalf("backup codes survive reset: %d", n)
	}
	if status, _ := f.Post(t, "/api/v1/admin/users/nobody/reset-mfa", nil); status != 404 {
		t.Fatalf("unknown user: %d", status)
	}
	// Audit: enrolment and reset are logged.
	entries, _ := f.Srv.Store.AuditLog(t.Context(), "dave", 100)
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
