package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
)

func TestAPISignInWithCameraCode(t *testing.T) {
	f := testenv.NewFleet(t)
	tok := f.Pending(t, "alice")
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	status, body := f.Verify(t, tok, code)
	if status != 200 || body["sessionToken"] == "" {
		t.Fatalf("verify: %d %v", status, body)
	}
	// The same code again (new sign-in) is refused: replay.
	tok2 := f.Pending(t, "alice")
	status, body = f.Verify(t, tok2, code)
	if status != 401 || body["attemptsLeft"] != 2.0 || !strings.Contains(body["error"].(string), "Invalid one-time password (attempts left: 2)") {
		t.Fatalf("replayed code: %d %v", status, body)
	}
	// A used pending token does not work twice.
	if status, _ := f.Verify(t, tok, code); status != 401 {
		t.Fatalf("reused pending token: %d", status)
	}
}

func TestAPIRules(t *testing.T) {
	f := testenv.NewFleet(t)
	now := f.Clock.Now()
	aliceCode := testenv.ScreenCode(t, f.Cams["alice"], now)
	bobCode := testenv.ScreenCode(t, f.Cams["bob"], now)

	t.Run("another user's camera code is refused", func(t *testing.T) {
		if aliceCode == bobCode {
			t.Skip("codes collide this step")
		}
		status, body := f.Verify(t, f.Pending(t, "alice"), bobCode)
		if status != 401 || body["attemptsLeft"] != 2.0 {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("bad password and unknown user answer alike", func(t *testing.T) {
		s1, b1 := f.Login(t, "alice", "wrong password")
		s2, b2 := f.Login(t, "nobody", "wrong password")
		if s1 != 401 || s2 != 401 || b1["error"] != b2["error"] || b1["error"] != "invalid username or password" {
			t.Fatalf("%d %v / %d %v", s1, b1, s2, b2)
		}
	})
	t.Run("unprovisioned camera or none: set up the app first", func(t *testing.T) {
		for _, u := range []string{"carol", "dave"} {
			status, body := f.Login(t, u, "pw-"+u+"-long")
			if status != 200 || body["authenticator"] != "setup" || fmt.Sprint(body["setupMethods"]) != "[app]" || fmt.Sprint(body["methods"]) != "[]" {
				t.Fatalf("%s: %d %v", u, status, body)
			}
		}
	})
	t.Run("camera-only organisation: no method without a provisioned camera", func(t *testing.T) {
		f.SetPolicy(t, true, "bodycam")
		defer f.SetPolicy(t, true, "bodycam", "app")
		for _, u := range []string{"carol", "dave"} {
			status, body := f.Login(t, u, "pw-"+u+"-long")
			if status != 403 || !strings.Contains(fmt.Sprint(body["error"]), "no provisioned body camera") {
				t.Fatalf("%s: %d %v", u, status, body)
			}
		}
	})
	t.Run("malformed requests", func(t *testing.T) {
		for _, body := range []string{`{`, `{"token":"x","code":"1","extra":1}`, ``, `{"token":"x"}{"code":"1"}`, `{"token":"` + strings.Repeat("x", 70000) + `"}`} {
			status, out := testenv.API(t, f.Srv, "", "POST", "/api/v1/auth/verify", body)
			if status != 400 || out["error"] == "" {
				t.Errorf("body %.30q: %d %v", body, status, out)
			}
		}
	})
	t.Run("unknown pending token", func(t *testing.T) {
		if status, body := f.Verify(t, "not-a-token", aliceCode); status != 401 || !strings.Contains(body["error"].(string), "expired") {
			t.Fatalf("%d %v", status, body)
		}
	})
}

func TestAPILockout(t *testing.T) {
	f := testenv.NewFleet(t)
	tok := f.Pending(t, "bob")
	for i, left := range []float64{2, 1} {
		status, body := f.Verify(t, tok, "000000")
		if status != 401 || body["attemptsLeft"] != left {
			t.Fatalf("failure %d: %d %v", i+1, status, body)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+f.Srv.HTTPAddr()+"/api/v1/auth/verify", strings.NewReader(`{"token":"`+tok+`","code":"000000"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "600" {
		t.Fatalf("third failure: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Even the right code is refused while blocked.
	right := testenv.ScreenCode(t, f.Cams["bob"], f.Clock.Now())
	// The API says it in the page's words.
	if status, body := f.Verify(t, tok, right); status != 429 ||
		body["error"] != "You have reached the limit of attempts. Please try again in 10 minutes or ask your administrator to unblock you." {
		t.Fatalf("right code while blocked: %d %v", status, body)
	}
	// Ten minutes later the block is over. (The camera-side MQTT tokens are
	// not involved: the cameras stay connected.)
	f.Clock.Add(10*time.Minute + time.Second)
	tok = f.Pending(t, "bob")
	right = testenv.ScreenCode(t, f.Cams["bob"], f.Clock.Now())
	if status, body := f.Verify(t, tok, right); status != 200 {
		t.Fatalf("after the block: %d %v", status, body)
	}
}

func TestPendingTokenExpires(t *testing.T) {
	f := testenv.NewFleet(t)
	tok := f.Pending(t, "alice")
	f.Clock.Add(5*time.Minute + time.Second)
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	if status, body := f.Verify(t, tok, code); status != 401 || !strings.Contains(body["error"].(string), "expired") {
		t.Fatalf("expired pending token: %d %v", status, body)
	}
}

func TestWipedOrUnassignedCameraRefused(t *testing.T) {
	f := testenv.NewFleet(t)
	ctx := context.Background()
	// Unassigned after the password step: the code is no longer checked.
	tok := f.Pending(t, "alice")
	if status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", "/api/v1/admin/cameras/BC4-A/unassign", nil); status != 200 {
		t.Fatalf("unassign: %d %v", status, body)
	}
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	if status, _ := f.Verify(t, tok, code); status != 403 {
		t.Fatalf("unassigned camera verified: %d", status)
	}
	// Wiped: no method at login.
	testenv.Op(t, f.Srv, "BC3-B", "wipe")
	if _, err := f.Srv.Store.ActiveSeed(ctx, "BC3-B"); err == nil {
		t.Fatal("wiped camera still has an active seed")
	}
	if status, body := f.Login(t, "bob", "pw-bob-long"); status != 200 || body["authenticator"] != "setup" || strings.Contains(fmt.Sprint(body["methods"]), "bodycam") {
		t.Fatalf("wiped camera still offered: %d %v", status, body)
	}
}

func TestAuditOfSignIn(t *testing.T) {
	f := testenv.NewFleet(t)
	tok := f.Pending(t, "alice")
	f.Verify(t, tok, "999999")
	f.Verify(t, tok, testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now()))
	log, err := f.Srv.Store.AuditLog(context.Background(), "alice", 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.SourceIP != "127.0.0.1" && strings.HasPrefix(e.Action, "login") {
			t.Errorf("audit %s without source IP", e.Action)
		}
		got = append(got, e.Action+"="+e.Result)
	}
	joined := strings.Join(got, " ")
	for _, want := range []string{"login.password=ok", "login.mfa=invalid", "login.mfa=ok"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %s: %s", want, joined)
		}
	}
}
