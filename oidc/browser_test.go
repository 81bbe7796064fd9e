package oidc_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camotp/camotp/internal/testenv"
)

// A real browser goes from the records system to camotp's sign-in page
// (which names the application), types the password, reads the Body 4
// how-to, types the code read off the camera, and lands back at the
// records system, whose go-oidc relying party verified the ID token:
// amr pwd+otp+mfa and the camera's model and serial.
func TestBrowserOIDCSignIn(t *testing.T) {
	e := newEnv(t)
	r := newRP(t, e, "records", false)
	ctx := testenv.Chromium(t)
	// Start the browser outside the timing.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := chromedp.Do(ctx,
		chromedp.Navigate(r.srv.URL+"/start"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if err != nil {
		t.Fatal(err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("client")))
	if err != nil || !strings.Contains(who, "records") {
		t.Fatalf("sign-in page does not name the application: %q %v", who, err)
	}
	shot(t, ctx, "oidc-login")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "pw-alice-long"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.Click(chromedp.CSS("#howto summary")),
		chromedp.WaitVisible(chromedp.CSS("#howto ol")),
	)
	if err != nil {
		t.Fatal(err)
	}
	howto, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("howto")))
	if err != nil || !strings.Contains(howto, "Body 4") {
		t.Fatalf("how-to %q %v", howto, err)
	}
	shot(t, ctx, "oidc-mfa")
	code := testenv.ScreenCode(t, e.cam, e.clock.Now())
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("rp-user")),
	)
	if err != nil {
		t.Fatal(err)
	}
	res := r.result(t)
	elapsed := time.Since(start)
	if res.err != nil {
		t.Fatal(res.err)
	}
	c := res.claims
	if !slices.Contains(c.AMR, "otp") || !slices.Contains(c.AMR, "mfa") || c.CameraModel != "Body 4" || c.CameraSerial != "BC4-A" || c.PreferredUsername != "alice" {
		t.Fatalf("claims %+v", c)
	}
	landed, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("rp-user")))
	if err != nil || !strings.Contains(landed, "signed in as alice with BC4-A") {
		t.Fatalf("records system page %q %v", landed, err)
	}
	t.Logf("full OIDC sign-in in Chromium (authorize → password → camera code → token → verified ID token): %v", elapsed)
}

// shot saves a screenshot to $CAMOTP_SCREENSHOTS when set.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("CAMOTP_SCREENSHOTS")
	if dir == "" {
		return
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}
