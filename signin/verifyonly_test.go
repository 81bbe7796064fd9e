package signin_test

import (
	"errors"
	"testing"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// VerifyOnly runs every rule of VerifyMethod — throttle, camera seed,
// audit — and ends the pending sign-in without starting a session; the
// success clears the throttle counters in the same commit.
func TestVerifyOnlyStartsNoSession(t *testing.T) {
	f := testenv.NewFleet(t)
	svc, ctx, ip := f.Srv.SignIn, t.Context(), "192.0.2.7"
	tokens := func() int {
		t.Helper()
		list, err := f.Srv.Store.UserTokens(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	tok := f.Pending(t, "alice")
	var codeErr *signin.CodeError
	if err := svc.VerifyOnly(ctx, tok, "", f.WrongCode(t, "alice"), ip); !errors.As(err, &codeErr) || codeErr.AttemptsLeft != 2 {
		t.Fatalf("wrong code: %v", err)
	}
	if err := svc.VerifyOnly(ctx, tok, "", testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now()), ip); err != nil {
		t.Fatalf("camera code: %v", err)
	}
	if n := tokens(); n != 0 {
		t.Fatalf("%d tokens of alice after VerifyOnly, want none (no session, pending token ended)", n)
	}
	if err := svc.VerifyOnly(ctx, tok, "", testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now()), ip); !errors.Is(err, signin.ErrBadToken) {
		t.Fatalf("pending token used twice: %v", err)
	}
	log, err := f.Srv.Store.AuditLog(ctx, "alice", 100)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, e := range log {
		if e.Action == "login.mfa" && e.Result == "ok" && e.SourceIP == ip {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d login.mfa ok rows from %s, want 1: %+v", ok, ip, log)
	}
	// The success cleared the (alice, ip) counter: a new wrong code has
	// the full allowance again.
	tok = f.Pending(t, "alice")
	if err := svc.VerifyOnly(ctx, tok, "", f.WrongCode(t, "alice"), ip); !errors.As(err, &codeErr) || codeErr.AttemptsLeft != 2 {
		t.Fatalf("wrong code after a success: %v", err)
	}
}
