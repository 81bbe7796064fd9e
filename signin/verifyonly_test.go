package signin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/together"
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

// Two right answers for one pending sign-in at once — the camera code and
// a backup code, as from two tabs or two nodes: one session starts, the
// other request is told the sign-in is over (not a server error).
func TestOnePendingSignInOneSession(t *testing.T) {
	f := testenv.NewFleet(t)
	svc, ctx, ip := f.Srv.SignIn, t.Context(), "192.0.2.7"
	codes, err := svc.NewBackupCodes(ctx, "alice", ip)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		f.Clock.Add(30 * time.Second)
		tok := f.Pending(t, "alice")
		answers := [][2]string{{"", testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())}, {signin.MethodBackup, codes[round]}}
		errs := make([]error, len(answers))
		sessions := make([]string, len(answers))
		together.Run(len(answers), func(i int) {
			sessions[i], errs[i] = svc.VerifyMethod(ctx, tok, answers[i][0], answers[i][1], ip)
		})
		won := 0
		for i, err := range errs {
			switch {
			case err == nil && sessions[i] != "":
				won++
			case errors.Is(err, signin.ErrBadToken):
			default:
				t.Fatalf("round %d, %q: %v", round, answers[i][0], err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d sessions from one pending sign-in (%v), want 1", round, won, errs)
		}
	}
}
