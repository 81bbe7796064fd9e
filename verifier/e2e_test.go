package verifier_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// shiftClock is real time plus a shift the test moves.
type shiftClock struct {
	mu    sync.Mutex
	shift time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.shift)
}

func (c *shiftClock) add(d time.Duration) {
	c.mu.Lock()
	c.shift += d
	c.mu.Unlock()
}

type fleet struct {
	srv   *server.Server
	clock *shiftClock
	cams  map[string]*device.State
	pw    string // alice's password when a test changed it
}

// newFleet serves with two officers: alice (Body 4) and bob (Body 3), both
// with provisioned, assigned cameras; carol has a camera that is registered
// but not provisioned; dave has none.
func newFleet(t *testing.T, mods ...func(*server.Config)) *fleet {
	t.Helper()
	clk := &shiftClock{}
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.Now = clk.Now
		for _, m := range mods {
			m(c)
		}
	})
	f := &fleet{srv: srv, clock: clk, cams: map[string]*device.State{}}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		testenv.User(t, srv, u, "pw-"+u+"-long")
	}
	f.cams["alice"] = testenv.ProvisionedCamera(t, srv, "BC4-A", device.Body4, "alice")
	f.cams["bob"] = testenv.ProvisionedCamera(t, srv, "BC3-B", device.Body3, "bob")
	f.cams["carol"] = testenv.Camera(t, srv, "WF-C", device.Workforce)
	testenv.Assign(t, srv, "WF-C", "carol")
	return f
}

// setPolicy sets the organisation policy through the admin API.
func (f *fleet) setPolicy(t *testing.T, require bool, methods ...string) {
	t.Helper()
	status, body := testenv.API(t, f.srv, f.srv.AdminToken, "PUT", "/api/v1/admin/org/policy", map[string]any{"requireMfa": require, "methods": methods})
	if status != 200 {
		t.Fatalf("set policy: %d %v", status, body)
	}
}

func (f *fleet) login(t *testing.T, user, pw string) (int, map[string]any) {
	return testenv.API(t, f.srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": pw})
}

func (f *fleet) verify(t *testing.T, token, code string) (int, map[string]any) {
	return testenv.API(t, f.srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": token, "code": code})
}

func (f *fleet) pending(t *testing.T, user string) string {
	t.Helper()
	code, body := f.login(t, user, "pw-"+user+"-long")
	if code != 200 || body["authenticator"] != "bodycam" || body["authenticatorCode"] != "" {
		t.Fatalf("login %s: %d %v", user, code, body)
	}
	return body["token"].(string)
}

func TestAPISignInWithCameraCode(t *testing.T) {
	f := newFleet(t)
	tok := f.pending(t, "alice")
	code := testenv.ScreenCode(t, f.cams["alice"], f.clock.Now())
	status, body := f.verify(t, tok, code)
	if status != 200 || body["sessionToken"] == "" {
		t.Fatalf("verify: %d %v", status, body)
	}
	// The same code again (new sign-in) is refused: replay.
	tok2 := f.pending(t, "alice")
	status, body = f.verify(t, tok2, code)
	if status != 401 || body["attemptsLeft"] != 2.0 || !strings.Contains(body["error"].(string), "Invalid one-time password (attempts left: 2)") {
		t.Fatalf("replayed code: %d %v", status, body)
	}
	// A used pending token does not work twice.
	if status, _ := f.verify(t, tok, code); status != 401 {
		t.Fatalf("reused pending token: %d", status)
	}
}

func TestAPIRules(t *testing.T) {
	f := newFleet(t)
	now := f.clock.Now()
	aliceCode := testenv.ScreenCode(t, f.cams["alice"], now)
	bobCode := testenv.ScreenCode(t, f.cams["bob"], now)

	t.Run("another user's camera code is refused", func(t *testing.T) {
		if aliceCode == bobCode {
			t.Skip("codes collide this step")
		}
		status, body := f.verify(t, f.pending(t, "alice"), bobCode)
		if status != 401 || body["attemptsLeft"] != 2.0 {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("bad password and unknown user answer alike", func(t *testing.T) {
		s1, b1 := f.login(t, "alice", "wrong password")
		s2, b2 := f.login(t, "nobody", "wrong password")
		if s1 != 401 || s2 != 401 || b1["error"] != b2["error"] || b1["error"] != "invalid username or password" {
			t.Fatalf("%d %v / %d %v", s1, b1, s2, b2)
		}
	})
	t.Run("unprovisioned camera or none: set up the app first", func(t *testing.T) {
		for _, u := range []string{"carol", "dave"} {
			status, body := f.login(t, u, "pw-"+u+"-long")
			if status != 200 || body["authenticator"] != "setup" || fmt.Sprint(body["setupMethods"]) != "[app]" || fmt.Sprint(body["methods"]) != "[]" {
				t.Fatalf("%s: %d %v", u, status, body)
			}
		}
	})
	t.Run("camera-only organisation: no method without a provisioned camera", func(t *testing.T) {
		f.setPolicy(t, true, "bodycam")
		defer f.setPolicy(t, true, "bodycam", "app")
		for _, u := range []string{"carol", "dave"} {
			status, body := f.login(t, u, "pw-"+u+"-long")
			if status != 403 || !strings.Contains(fmt.Sprint(body["error"]), "no provisioned body camera") {
				t.Fatalf("%s: %d %v", u, status, body)
			}
		}
	})
	t.Run("malformed requests", func(t *testing.T) {
		for _, body := range []string{`{`, `{"token":"x","code":"1","extra":1}`, ``, `{"token":"x"}{"code":"1"}`, `{"token":"` + strings.Repeat("x", 70000) + `"}`} {
			status, out := testenv.API(t, f.srv, "", "POST", "/api/v1/auth/verify", body)
			if status != 400 || out["error"] == "" {
				t.Errorf("body %.30q: %d %v", body, status, out)
			}
		}
	})
	t.Run("unknown pending token", func(t *testing.T) {
		if status, body := f.verify(t, "not-a-token", aliceCode); status != 401 || !strings.Contains(body["error"].(string), "expired") {
			t.Fatalf("%d %v", status, body)
		}
	})
}

func TestAPILockout(t *testing.T) {
	f := newFleet(t)
	tok := f.pending(t, "bob")
	for i, left := range []float64{2, 1} {
		status, body := f.verify(t, tok, "000000")
		if status != 401 || body["attemptsLeft"] != left {
			t.Fatalf("failure %d: %d %v", i+1, status, body)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+f.srv.HTTPAddr()+"/api/v1/auth/verify", strings.NewReader(`{"token":"`+tok+`","code":"000000"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "600" {
		t.Fatalf("third failure: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Even the right code is refused while blocked.
	right := testenv.ScreenCode(t, f.cams["bob"], f.clock.Now())
	if status, body := f.verify(t, tok, right); status != 429 || !strings.Contains(body["error"].(string), "try again in 10 minutes") {
		t.Fatalf("right code while blocked: %d %v", status, body)
	}
	// Ten minutes later the block is over. (The camera-side MQTT tokens are
	// not involved: the cameras stay connected.)
	f.clock.add(10*time.Minute + time.Second)
	tok = f.pending(t, "bob")
	right = testenv.ScreenCode(t, f.cams["bob"], f.clock.Now())
	if status, body := f.verify(t, tok, right); status != 200 {
		t.Fatalf("after the block: %d %v", status, body)
	}
}

func TestPendingTokenExpires(t *testing.T) {
	f := newFleet(t)
	tok := f.pending(t, "alice")
	f.clock.add(5*time.Minute + time.Second)
	code := testenv.ScreenCode(t, f.cams["alice"], f.clock.Now())
	if status, body := f.verify(t, tok, code); status != 401 || !strings.Contains(body["error"].(string), "expired") {
		t.Fatalf("expired pending token: %d %v", status, body)
	}
}

func TestWipedOrUnassignedCameraRefused(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	// Unassigned after the password step: the code is no longer checked.
	tok := f.pending(t, "alice")
	if status, body := testenv.API(t, f.srv, f.srv.AdminToken, "POST", "/api/v1/admin/cameras/BC4-A/unassign", nil); status != 200 {
		t.Fatalf("unassign: %d %v", status, body)
	}
	code := testenv.ScreenCode(t, f.cams["alice"], f.clock.Now())
	if status, _ := f.verify(t, tok, code); status != 403 {
		t.Fatalf("unassigned camera verified: %d", status)
	}
	// Wiped: no method at login.
	testenv.Op(t, f.srv, "BC3-B", "wipe")
	if _, err := f.srv.Store.ActiveSeed(ctx, "BC3-B"); err == nil {
		t.Fatal("wiped camera still has an active seed")
	}
	if status, body := f.login(t, "bob", "pw-bob-long"); status != 200 || body["authenticator"] != "setup" || strings.Contains(fmt.Sprint(body["methods"]), "bodycam") {
		t.Fatalf("wiped camera still offered: %d %v", status, body)
	}
}

func TestAuditOfSignIn(t *testing.T) {
	f := newFleet(t)
	tok := f.pending(t, "alice")
	f.verify(t, tok, "999999")
	f.verify(t, tok, testenv.ScreenCode(t, f.cams["alice"], f.clock.Now()))
	log, err := f.srv.Store.AuditLog(context.Background(), "alice", 50)
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
