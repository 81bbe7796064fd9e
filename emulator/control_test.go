package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/together"
)

var ctlT0 = time.Date(2026, 11, 26, 8, 0, 10, 0, time.UTC)

var ctlSeed = func() device.Seed {
	s, err := device.ParseBase32Seed("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	if err != nil {
		panic(err)
	}
	return s
}()

// noSeed is a camera that was never provisioned.
type noSeed struct{}

func (noSeed) Seed() (device.Seed, error) { return device.Seed{}, device.ErrNoSeed }

// fixedLink is a fleet link whose status never changes.
type fixedLink string

func (l fixedLink) Status() string { return string(l) }

// controlServer serves the control API of a camera of model m on a real
// loopback listener; its clock stands at ctlT0 until moved.
func controlServer(t *testing.T, m device.Model, seeds device.SeedSource) (*httptest.Server, *Controlled) {
	t.Helper()
	cam, err := NewControlled(device.Config{Serial: "QA-1", Model: m, Clock: device.FixedClock{T: ctlT0}, Seeds: seeds, Link: fixedLink("connected")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ControlHandler(cam, nil))
	t.Cleanup(srv.Close)
	return srv, cam
}

// call makes one control request and decodes the answer into out (when
// not nil); it returns the status.
func call(t testing.TB, srv *httptest.Server, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// oathtoolCode is the code an independent implementation computes for
// ctlSeed at t.
func oathtoolCode(t *testing.T, at time.Time) string {
	t.Helper()
	if _, err := exec.LookPath("oathtool"); err != nil {
		want, err := ctlSeed.Code(at)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("oathtool not installed (Debian package oathtool; CI installs it): checked against the camera core")
		return want
	}
	out, err := exec.Command("oathtool", "--totp", "-b", ctlSeed.Base32(), "--now", at.UTC().Format("2006-01-02 15:04:05 UTC")).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// GET /code walks each model's own menu to the Authenticator screen and
// answers the code oathtool computes, from whatever screen the camera was
// on; the camera stays on the Authenticator screen.
func TestControlCode(t *testing.T) {
	for _, m := range device.Models {
		t.Run(string(m), func(t *testing.T) {
			srv, _ := controlServer(t, m, device.TestSeed{S: ctlSeed})
			// Start somewhere else: the menu, cursor moved.
			var st ScreenState
			g := m.MenuGesture()
			gesture := map[device.GestureKind]string{device.Press: "press", device.DoublePress: "double", device.LongPress: "long"}[g.Kind]
			if code := call(t, srv, "POST", "/press", fmt.Sprintf(`{"button":%q,"gesture":%q}`, g.Button, gesture), &st); code != 200 || st.Screen != "menu" {
				t.Fatalf("menu gesture: %d %+v", code, st)
			}
			call(t, srv, "POST", "/press", `{"button":"voldown"}`, &st)
			call(t, srv, "POST", "/press", `{"button":"voldown"}`, &st)
			var ans CodeAnswer
			if code := call(t, srv, "GET", "/code", "", &ans); code != 200 {
				t.Fatalf("GET /code: %d", code)
			}
			want := oathtoolCode(t, ctlT0)
			if ans.Code != want || ans.ExpiresIn != 20 || ans.Model != string(m) {
				t.Fatalf("GET /code = %+v, want code %s expiring in 20 s on a %s", ans, want, m)
			}
			if call(t, srv, "GET", "/screen", "", &st); st.Screen != "authenticator" || st.Code != want || st.SecondsLeft != 20 ||
				st.Link != "connected" || !strings.Contains(strings.Join(st.Lines, "\n"), want) {
				t.Fatalf("screen after GET /code: %+v", st)
			}
		})
	}
}

// A camera that cannot show a code answers 409 with what its screen says.
func TestControlCodeNotProvisioned(t *testing.T) {
	srv, _ := controlServer(t, device.Body3, noSeed{})
	var e map[string]string
	if code := call(t, srv, "GET", "/code", "", &e); code != http.StatusConflict || e["error"] != "not provisioned" {
		t.Fatalf("GET /code of a camera without a seed: %d %v, want 409 not provisioned", code, e)
	}
}

// POST /clock moves the camera's time: the codes follow, as oathtool
// computes them for the moved time; bad requests are refused with a
// reason and change nothing.
func TestControlClock(t *testing.T) {
	srv, cam := controlServer(t, device.Body4, device.TestSeed{S: ctlSeed})
	for _, tc := range []struct {
		body string
		want time.Time
	}{
		{`{"offset":"90s"}`, ctlT0.Add(90 * time.Second)},
		{`{"offset":"-2m"}`, ctlT0.Add(-30 * time.Second)},
		{`{"set":"2030-01-02T03:04:05Z"}`, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`{"ppm":0}`, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
	} {
		var ca ClockAnswer
		if code := call(t, srv, "POST", "/clock", tc.body, &ca); code != 200 || ca.Time != tc.want.Format(time.RFC3339Nano) {
			t.Fatalf("POST /clock %s: %d %+v, want %v", tc.body, code, ca, tc.want)
		}
		var ans CodeAnswer
		call(t, srv, "GET", "/code", "", &ans)
		if want := oathtoolCode(t, tc.want); ans.Code != want {
			t.Fatalf("after %s: code %s, want %s", tc.body, ans.Code, want)
		}
	}
	before := cam.Clock().Now()
	for _, body := range []string{``, `{}`, `{"offset":"90s","ppm":5}`, `{"offset":"soon"}`, `{"offset":"48h"}`, `{"ppm":1e7}`,
		`{"set":"tomorrow"}`, `{"set":"0000-01-01T00:00:00Z"}`, `{"when":"now"}`, `{"offset":"1s"}{"offset":"1s"}`,
		`{"offset":"` + strings.Repeat("9", 2000) + `s"}`} {
		var e map[string]string
		if code := call(t, srv, "POST", "/clock", body, &e); code != 400 || e["error"] == "" {
			t.Fatalf("POST /clock %.40q: %d %v, want 400 with a reason", body, code, e)
		}
	}
	if !cam.Clock().Now().Equal(before) {
		t.Fatal("a refused clock request moved the clock")
	}
}

// A drifting clock: 1000 ppm fast gains a millisecond a second of its base.
func TestClockPPM(t *testing.T) {
	base := &device.OffsetClock{Base: device.FixedClock{T: ctlT0}}
	c := NewClock(base)
	c.SetPPM(1000)
	base.Shift = 100 * time.Second
	if got, want := c.Now(), ctlT0.Add(100*time.Second+100*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after 100 s at 1000 ppm: %v, want %v", got, want)
	}
	c.SetPPM(0)
	base.Shift += 10 * time.Second
	if got, want := c.Now(), ctlT0.Add(110*time.Second+100*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after 10 s more at 0 ppm: %v, want %v", got, want)
	}
}

// Presses: bad buttons and gestures are refused with a reason; a request
// to a name that is not loopback is refused (DNS rebinding).
func TestControlRefusals(t *testing.T) {
	srv, _ := controlServer(t, device.Workforce, device.TestSeed{S: ctlSeed})
	for _, body := range []string{`{"button":"turbo"}`, `{"button":"select","gesture":"triple"}`, `{"button":"select","extra":1}`, `[]`} {
		var e map[string]string
		if code := call(t, srv, "POST", "/press", body, &e); code != 400 || e["error"] == "" {
			t.Fatalf("POST /press %s: %d %v", body, code, e)
		}
	}
	if code := call(t, srv, "DELETE", "/code", "", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE /code: %d", code)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/code", nil)
	req.Host = "qa-camera.attacker.example:8080"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a request for another host name: %d, want 403", resp.StatusCode)
	}
	for _, h := range []string{"localhost:1", "127.0.0.1", "[::1]:80", "127.9.9.9:5"} {
		if !loopbackHost(h) {
			t.Errorf("%s refused", h)
		}
	}
	for _, h := range []string{"", "localhost.attacker.example", "10.0.0.1:80", "[::2]:80", "0.0.0.0:9"} {
		if loopbackHost(h) {
			t.Errorf("%s taken for loopback", h)
		}
	}
}

// 32 clients at once pressing buttons and asking for codes: every code
// answer is right (the flow runs whole, whatever else is pressed
// meanwhile), and the race detector sees the camera guarded.
func TestControlParallel(t *testing.T) {
	srv, _ := controlServer(t, device.Body4, device.TestSeed{S: ctlSeed})
	want, err := ctlSeed.Code(ctlT0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	together.Run(32, func(i int) {
		var got string
		switch i % 3 {
		case 0:
			var ans CodeAnswer
			if code := call(t, srv, "GET", "/code", "", &ans); code != 200 || ans.Code != want {
				got = fmt.Sprintf("code %d %+v", code, ans)
			}
		case 1:
			var st ScreenState
			if code := call(t, srv, "POST", "/press", `{"button":"select","gesture":"double"}`, &st); code != 200 {
				got = fmt.Sprintf("press %d", code)
			}
		default:
			var st ScreenState
			if code := call(t, srv, "GET", "/screen", "", &st); code != 200 || st.Screen == "" {
				got = fmt.Sprintf("screen %d %+v", code, st)
			}
		}
		if got != "" {
			mu.Lock()
			bad = append(bad, got)
			mu.Unlock()
		}
	})
	if len(bad) > 0 {
		t.Fatalf("%d bad answers, first: %s", len(bad), bad[0])
	}
}

// FuzzControlAPI: no request body makes the control API fail (5xx) or
// panic.
func FuzzControlAPI(f *testing.F) {
	for _, s := range []string{`{"button":"select"}`, `{"offset":"90s"}`, `{"ppm":-3.5}`, `{"set":"2026-01-01T00:00:00Z"}`, `{`, `null`, `{"ppm":null}`} {
		f.Add(s)
	}
	cam, err := NewControlled(device.Config{Serial: "QA-1", Model: device.Body4, Clock: device.FixedClock{T: ctlT0}, Seeds: device.TestSeed{S: ctlSeed}})
	if err != nil {
		f.Fatal(err)
	}
	h := ControlHandler(cam, nil)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/press", "/clock"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "http://127.0.0.1"+path, bytes.NewBufferString(body)))
			if rec.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/code", nil))
		if rec.Code != 200 && rec.Code != 409 {
			t.Fatalf("GET /code after %q: %d %s", body, rec.Code, rec.Body)
		}
	})
}
