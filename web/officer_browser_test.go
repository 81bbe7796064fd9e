package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// TestBrowserOfficerPages: the officer's pages name the product and the
// agency; an officer is not offered the administration and gets the 403
// page there; the Security page's Back is a link; after the third wrong
// code the page says what to do in the product's words and the code
// field is disabled (also when the page is opened again); the email code
// page shows the address masked only, how long the code lasts (the
// configured 2 minutes), and offers Resend.
func TestBrowserOfficerPages(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) {
		c.OrgName = "Metro Police"
		c.Notify.DevOutbox = true
		sc := signin.DefaultConfig()
		sc.SentCodeTTLEmail = 2 * time.Minute
		c.SignIn = &sc
	})
	f.SetPolicy(t, true, "bodycam", "app", "email")
	base := "http://" + f.Srv.HTTPAddr()

	t.Run("alice", func(t *testing.T) {
		ctx := testenv.Chromium(t)
		run(t, ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("username")))
		if title, _ := chromedp.Run(ctx, chromedp.Title()); title != "Sign in · camotp · Metro Police" {
			t.Fatalf("title %q", title)
		}
		mustContain(t, ctx, "#org", "Metro Police")
		shoot(t, ctx, "officer-login")
		if err := signInPassword(ctx, base, "alice", "pw-alice-long", "code"); err != nil {
			t.Fatal(err)
		}
		shoot(t, ctx, "officer-mfa")
		run(t, ctx,
			chromedp.SendKeys(chromedp.ID("code"), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())),
			chromedp.Click(chromedp.ID("verify")),
			chromedp.WaitVisible(chromedp.ID("who")))
		if n := count(t, ctx, "#admin"); n != 0 {
			t.Fatal("an officer is offered the administration")
		}
		shoot(t, ctx, "officer-home")
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/admin"))
		if err != nil || resp.Status != 403 {
			t.Fatalf("/admin for an officer: %v %v", resp, err)
		}
		mustContain(t, ctx, "#forbidden", "You cannot open this page")
		shoot(t, ctx, "officer-403")
		run(t, ctx, chromedp.Navigate(base+"/security"), chromedp.WaitVisible(chromedp.ID("back")))
		if class, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("back"), "class")); err != nil || class.Value != "back" {
			t.Fatalf("Back: class %q %v", class.Value, err)
		}
		shoot(t, ctx, "officer-security")
		if status := submit(t, ctx, chromedp.Click(chromedp.ID("back"))); status != 200 {
			t.Fatalf("Back: %d", status)
		}
		mustContain(t, ctx, "#who", "alice")
	})

	t.Run("lockout", func(t *testing.T) {
		ctx := testenv.Chromium(t)
		if err := signInPassword(ctx, base, "bob", "pw-bob-long", "code"); err != nil {
			t.Fatal(err)
		}
		wrong := f.WrongCode(t, "bob")
		for i := range 3 {
			submit(t, ctx, chromedp.SendKeys(chromedp.ID("code"), wrong), chromedp.Click(chromedp.ID("verify")))
			if i < 2 {
				mustContain(t, ctx, "#error", "Invalid one-time password")
			}
		}
		checkLocked := func() {
			t.Helper()
			mustContain(t, ctx, "#error", "You have reached the limit of attempts. Please try again in 10 minutes or ask your administrator to unblock you.")
			for _, id := range []string{"code", "verify"} {
				if d, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID(id), "disabled")); err != nil || !d.Exists {
					t.Fatalf("#%s is not disabled while blocked (%v)", id, err)
				}
			}
		}
		checkLocked()
		shoot(t, ctx, "officer-locked")
		if status := submit(t, ctx, chromedp.Reload()); status != 429 {
			t.Fatalf("the MFA page opened again while blocked: %d", status)
		}
		checkLocked()
	})

	t.Run("email", func(t *testing.T) {
		ctx := testenv.Chromium(t)
		if err := signInPassword(ctx, base, "dave", "pw-dave-long", "send"); err != nil {
			t.Fatal(err)
		}
		mustContain(t, ctx, "main", "We email a code to d•••@pd.example; it lasts 2 minutes.")
		noFullAddress(t, ctx)
		submit(t, ctx, chromedp.Click(chromedp.ID("send")))
		mustContain(t, ctx, "#sent", "Code sent to d•••@pd.example. It lasts 2 minutes.")
		mustContain(t, ctx, "#send", "Resend code")
		noFullAddress(t, ctx)
		shoot(t, ctx, "officer-email-sent")
		msgs, _ := f.Srv.Store.Outbox(t.Context(), 1)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Body, "It expires in 2 minutes.") {
			t.Fatalf("the email: %+v", msgs)
		}
		submit(t, ctx, chromedp.Click(chromedp.ID("send")))
		if msgs, _ := f.Srv.Store.Outbox(t.Context(), 5); len(msgs) != 2 {
			t.Fatalf("Resend sent %d messages in all, want 2", len(msgs))
		}
	})
}

// noFullAddress fails t when the page shows dave's whole address.
func noFullAddress(t *testing.T, ctx context.Context) {
	t.Helper()
	if strings.Contains(text(t, ctx, "body"), "dave@pd.example") {
		t.Fatal("the page shows the full address")
	}
}
