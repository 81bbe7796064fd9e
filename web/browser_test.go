package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camotp/camotp/internal/testenv"
)

// A real browser signs in with the code read off the camera, after reading
// the model's "Show me how to find it" steps, for a Body 4 and a Body 3 user.
func TestBrowserSignIn(t *testing.T) {
	f := testenv.NewFleet(t)
	base := "http://" + f.Srv.HTTPAddr()
	tests := []struct {
		user, model, step string
	}{
		{"alice", "Body 4", "Double-press Select (the button between the volume keys) to open the menu."},
		{"bob", "Body 3", "Long-press Program to open the menu."},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			ctx := testenv.Chromium(t)
			if err := signInPassword(ctx, base, tc.user, "pw-"+tc.user+"-long", "code"); err != nil {
				t.Fatal(err)
			}
			// The steps are hidden until the officer asks for them.
			visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('#howto ol').checkVisibility()`))
			if err != nil || visible {
				t.Fatalf("how-to steps visible before clicking the link (%v)", err)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#howto summary")), chromedp.WaitVisible(chromedp.CSS("#howto ol"))); err != nil {
				t.Fatal(err)
			}
			howto, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("howto")))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(howto, tc.step) || !strings.Contains(howto, "Press Volume Down to highlight Authenticator.") || !strings.Contains(howto, tc.model) {
				t.Fatalf("how-to for %s:\n%s", tc.model, howto)
			}
			// A wrong code first.
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("code"), "000000"),
				chromedp.Click(chromedp.ID("verify")),
				chromedp.WaitVisible(chromedp.ID("error")),
			)
			if err != nil {
				t.Fatal(err)
			}
			errText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
			if err != nil || errText != "Invalid one-time password (attempts left: 2)" {
				t.Fatalf("error text %q (%v)", errText, err)
			}
			if os.Getenv("CAMOTP_SCREENSHOTS") != "" {
				png, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				os.WriteFile(filepath.Join(os.Getenv("CAMOTP_SCREENSHOTS"), tc.user+".png"), png, 0o644)
			}
			// Then the code read off the camera.
			code := testenv.ScreenCode(t, f.Cams[tc.user], f.Clock.Now())
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("code"), code),
				chromedp.Click(chromedp.ID("verify")),
				chromedp.WaitVisible(chromedp.ID("who")),
			)
			if err != nil {
				t.Fatal(err)
			}
			who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
			if err != nil || who != "You are signed in as "+tc.user+"." {
				t.Fatalf("home page says %q (%v)", who, err)
			}
		})
	}
}

// signInPassword fills the sign-in form and waits for the element id.
func signInPassword(ctx context.Context, base, user, pw, waitID string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID(waitID)),
	)
}

// TestBrowserAppEnrolmentAndBackupCode: dave has no camera, so sign-in
// makes him set up an authenticator app: the browser reads the key off the
// page (and the QR code is an image), pquerna/otp computes the code, and he
// is signed in. On the Security page he makes backup codes. He signs in
// again with the app, then once more with a backup code through "Other
// options".
func TestBrowserAppEnrolmentAndBackupCode(t *testing.T) {
	f := testenv.NewFleet(t)
	base := "http://" + f.Srv.HTTPAddr()
	ctx := testenv.Chromium(t)
	if err := signInPassword(ctx, base, "dave", "pw-dave-long", "secret"); err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("secret")))
	if err != nil {
		t.Fatal(err)
	}
	qrWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById('qr').naturalWidth`))
	if err != nil || qrWidth < 100 {
		t.Fatalf("QR image not rendered (natural width %d, %v)", qrWidth, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), testenv.AppCode(t, secret, f.Clock.Now())),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("who")),
		chromedp.Click(chromedp.ID("security")),
		chromedp.WaitVisible(chromedp.ID("m-app")),
		chromedp.Click(chromedp.ID("new-backup")),
		chromedp.WaitVisible(chromedp.ID("codes")),
	)
	if err != nil {
		t.Fatal(err)
	}
	codesText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("codes")))
	if err != nil {
		t.Fatal(err)
	}
	codes := strings.Fields(codesText)
	if len(codes) != 10 {
		t.Fatalf("backup codes on the page: %q", codesText)
	}
	// Sign out, sign in again: the challenge opens with the app; take
	// "Other options" → backup code.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/home"),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Signed in again with the app: the challenge opens with it.
	if err := signInPassword(ctx, base, "dave", "pw-dave-long", "other"); err != nil {
		t.Fatal(err)
	}
	f.Clock.Add(30 * time.Second)
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), testenv.AppCode(t, secret, f.Clock.Now())),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := signInPassword(ctx, base, "dave", "pw-dave-long", "other"); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#other summary")),
		chromedp.WaitVisible(chromedp.ID("use-backup")),
		chromedp.Click(chromedp.ID("use-backup")),
		chromedp.WaitVisible(chromedp.ID("code")),
	)
	if err != nil {
		t.Fatal(err)
	}
	label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("label[for=code]")))
	if label != "Backup code" {
		t.Fatalf("backup option shows label %q", label)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), codes[3]),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Srv.Store.BackupCodesLeft(context.Background(), "dave"); n != 9 {
		t.Fatalf("%d backup codes left, want 9", n)
	}
}
