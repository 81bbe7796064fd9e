package qa_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/camotp/camotp/qa"
)

// A whole QA flow against a real server: officers with a camera of each
// model sign in with the code read off it; a code used once is refused; a
// camera whose clock is a few minutes off is told so; the control API
// serves the same camera over HTTP.
func TestQAFlow(t *testing.T) {
	srv := qa.Start(t)
	for _, tc := range []struct{ user, serial, model string }{
		{"ofc-a", "QA-B4", "body4"}, {"ofc-b", "QA-B3", "body3"}, {"ofc-c", "QA-WF", "workforce"},
	} {
		srv.AddOfficer(t, tc.user, "pw-"+tc.user+"-long")
		cam := srv.AddCamera(t, tc.serial, tc.model, tc.user)
		if s := srv.SignIn(t, tc.user, "pw-"+tc.user+"-long", cam); s == "" {
			t.Fatalf("%s: no session", tc.user)
		}
		if sc := cam.Screen(); sc.Screen != "authenticator" || sc.Model != tc.model || sc.Link == "" {
			t.Fatalf("%s: screen after reading the code: %+v", tc.serial, sc)
		}
		// The same code again: a replay.
		status, login := srv.Login(t, tc.user, "pw-"+tc.user+"-long")
		if status != http.StatusOK {
			t.Fatalf("%s: login %d", tc.user, status)
		}
		if status, ans := srv.Verify(t, login.Token, cam.Code(t)); status != http.StatusUnauthorized {
			t.Fatalf("%s: the used code again: %d %v, want 401", tc.user, status, ans)
		}
	}

	srv.AddOfficer(t, "ofc-d", "pw-ofc-d-long")
	cam := srv.AddCamera(t, "QA-SKEW", "body4", "ofc-d")
	cam.SkewClock(4 * time.Minute)
	_, login := srv.Login(t, "ofc-d", "pw-ofc-d-long")
	status, ans := srv.Verify(t, login.Token, cam.Code(t))
	if msg, _ := ans["error"].(string); status != http.StatusUnauthorized || msg == "" {
		t.Fatalf("a camera 4 minutes fast: %d %v, want 401 saying the clock is off", status, ans)
	}
	t.Logf("camera 4 minutes fast: %v", ans["error"])

	// The control API over HTTP shows the same camera.
	url := cam.ServeControl(t)
	resp, err := http.Get(url + "/code")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var code struct {
		Code      string `json:"code"`
		ExpiresIn int    `json:"expiresIn"`
		Model     string `json:"model"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&code); err != nil || resp.StatusCode != 200 || code.Code != cam.Code(t) || code.Model != "body4" {
		t.Fatalf("GET /code: %d %+v %v", resp.StatusCode, code, err)
	}
	if sc := cam.Press(t, "power", "press"); sc.Screen != "home" {
		t.Fatalf("after Power: %+v", sc)
	}
}
