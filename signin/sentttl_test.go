package signin_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// The lifetime of a sent code per channel: the product's 60 s unless
// configured, within bounds.
func TestSentCodeTTLConfig(t *testing.T) {
	t.Parallel()
	key, _ := masterkey.New(make([]byte, 32))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		email, phone         time.Duration
		wantEmail, wantPhone time.Duration
		bad                  bool
	}{
		{0, 0, 60 * time.Second, 60 * time.Second, false},
		{2 * time.Minute, 0, 2 * time.Minute, 60 * time.Second, false},
		{0, signin.MaxSentCodeTTL, 60 * time.Second, 15 * time.Minute, false},
		{signin.MinSentCodeTTL, 0, 30 * time.Second, 60 * time.Second, false},
		{signin.MinSentCodeTTL - time.Second, 0, 0, 0, true},
		{0, signin.MaxSentCodeTTL + time.Second, 0, 0, true},
		{-time.Minute, 0, 0, 0, true},
	} {
		cfg := signin.DefaultConfig()
		cfg.SentCodeTTLEmail, cfg.SentCodeTTLPhone = tc.email, tc.phone
		svc, err := signin.NewService(st, cfg, nil, nil)
		if tc.bad {
			if err == nil {
				t.Errorf("email %v phone %v: accepted", tc.email, tc.phone)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if e, s, c := svc.SentCodeTTL(signin.MethodEmail), svc.SentCodeTTL(signin.MethodSMS), svc.SentCodeTTL(signin.MethodCall); e != tc.wantEmail || s != tc.wantPhone || c != tc.wantPhone {
			t.Errorf("email %v phone %v: %v %v %v", tc.email, tc.phone, e, s, c)
		}
	}
	for d, want := range map[time.Duration]string{60 * time.Second: "60 seconds", 90 * time.Second: "90 seconds", 2 * time.Minute: "2 minutes", 15 * time.Minute: "15 minutes"} {
		if got := signin.Lifetime(d); got != want {
			t.Errorf("Lifetime(%v) = %q, want %q", d, got, want)
		}
	}
}

// An emailed code lives as long as configured: with 2 minutes, still good
// after 90 s (past the default 60), dead after 121 s.
func TestSentCodeLivesItsConfiguredTime(t *testing.T) {
	t.Parallel()
	f := testenv.NewFleet(t, func(c *server.Config) {
		c.Notify.DevOutbox = true
		sc := signin.DefaultConfig()
		sc.SentCodeTTLEmail = 2 * time.Minute
		c.SignIn = &sc
	})
	f.SetPolicy(t, true, "bodycam", "email")
	svc, ctx, ip := f.Srv.SignIn, t.Context(), "192.0.2.9"
	code := regexp.MustCompile(`\b[0-9]{6}\b`)
	send := func(tok string) string {
		t.Helper()
		if _, err := svc.SendCode(ctx, tok, signin.MethodEmail, ip); err != nil {
			t.Fatal(err)
		}
		msgs, err := f.Srv.Store.Outbox(ctx, 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("outbox %+v %v", msgs, err)
		}
		return code.FindString(msgs[0].Body)
	}
	res, err := svc.Login(ctx, "dave", "pw-dave-long", ip, "")
	if err != nil || res.Method != signin.MethodEmail {
		t.Fatalf("login: %+v %v", res, err)
	}
	c := send(res.Pending)
	f.Clock.Add(121 * time.Second)
	if _, err := svc.VerifyMethod(ctx, res.Pending, signin.MethodEmail, c, ip); !errors.As(err, new(*signin.CodeError)) {
		t.Fatalf("a code past its 2 minutes: %v", err)
	}
	c = send(res.Pending)
	f.Clock.Add(90 * time.Second)
	_, err = svc.VerifyMethod(ctx, res.Pending, signin.MethodEmail, c, ip)
	if err != nil && !errors.As(err, new(*signin.SetupNeeded)) { // accepted (a session, or a set-up next)
		t.Fatalf("a code 90 s old of 2 minutes: %v", err)
	}
}
