package web_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/rollover"
)

// TestPolicyPageShowsRotation: the console's policy page says the seed
// rotation is off, then, once a policy is set and the fleet's seeds have
// aged past it, the policy and the cameras due.
func TestPolicyPageShowsRotation(t *testing.T) {
	f := testenv.NewFleet(t)
	if status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", "/api/v1/admin/users",
		map[string]string{"username": "chief", "email": "chief@pd.example", "password": "pw-chief-long", "role": "admin"}); status != 201 {
		t.Fatalf("add admin: %d %v", status, body)
	}
	svc := f.Srv.SignIn
	enr, _ := svc.StartApp(t.Context(), "chief")
	if err := svc.ConfirmApp(t.Context(), "chief", testenv.AppCode(t, enr.Secret, f.Clock.Now()), ""); err != nil {
		t.Fatal(err)
	}
	page := func() string {
		t.Helper()
		f.Clock.Add(30 * time.Second) // a fresh code step
		b := newBrowser(t, f)
		_, p := b.get("/login")
		_, p, _ = b.post("/login", url.Values{"username": {"chief"}, "password": {"pw-chief-long"}}, p)
		b.post("/mfa", url.Values{"code": {testenv.AppCode(t, enr.Secret, f.Clock.Now())}}, p)
		status, p := b.get("/admin/policy")
		if status != 200 {
			t.Fatalf("policy page: %d\n%s", status, p)
		}
		return p
	}
	if p := page(); !strings.Contains(p, "Off: seeds are rotated only by hand.") {
		t.Fatalf("policy page without a rotation policy:\n%s", p)
	}
	if status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "PUT", rollover.PolicyPath, rollover.Policy{Every: "1d", MaxPerHour: 50}); status != 200 {
		t.Fatalf("set rotation policy: %d %v", status, body)
	}
	f.Clock.Add(25 * time.Hour)
	p := page()
	for _, want := range []string{"Every 1d, any time of day (UTC), at most 50% of the fleet per hour.", "2 provisioned cameras",
		`id="rotation-due">2 due`, `id="rotation-overdue">0 overdue`, "In the window now."} {
		if !strings.Contains(p, want) {
			t.Errorf("policy page lacks %q:\n%s", want, p)
		}
	}
}
