package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
)

// camotp camera code: the code a camera shows now, read through its
// model's own buttons, offline — the same as oathtool's; exit 3 with the
// reason for a camera that shows none.
func TestCameraCode(t *testing.T) {
	for _, model := range []string{"body4", "body3", "workforce"} {
		dir := initCamera(t, "QA-"+strings.ToUpper(model), model)
		_, errOut, code := run(t, "camera", "code", "--state", dir)
		if code != exitNoCode || !strings.Contains(errOut, "not provisioned") {
			t.Fatalf("%s without a seed: exit %d %q, want 3 saying not provisioned", model, code, errOut)
		}
		st, err := device.OpenState(dir)
		if err != nil {
			t.Fatal(err)
		}
		seed, err := device.ParseBase32Seed(rfcB32)
		if err != nil {
			t.Fatal(err)
		}
		seed.Version = 1
		if err := st.StoreSeed(seed); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run(t, "camera", "code", "--state", dir, "--clock", "2009-02-13T23:31:30Z")
		if want := wantCode(t); code != 0 || strings.TrimSpace(out) != want {
			t.Fatalf("%s: exit %d %q %s, want %s", model, code, out, errOut, want)
		}
		out, _, code = run(t, "camera", "code", "--state", dir, "--clock", "2009-02-13T23:31:30Z", "--json")
		var ans struct {
			Code      string `json:"code"`
			ExpiresIn int    `json:"expiresIn"`
			Model     string `json:"model"`
		}
		if err := json.Unmarshal([]byte(out), &ans); err != nil || code != 0 || ans.Code != wantCode(t) || ans.ExpiresIn != 30 || ans.Model != model {
			t.Fatalf("%s --json: exit %d %q %v", model, code, out, err)
		}
	}
}

// --expect-code: a headless script whose last screen shows no code exits 3.
func TestHeadlessExpectCode(t *testing.T) {
	dir := initCamera(t, "QA-EXPECT", "body4")
	script := "double:select,press:voldown,press:select"
	if _, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--script", script, "--expect-code"); code != exitNoCode {
		t.Fatalf("no seed, --expect-code: exit %d, want 3", code)
	}
	if out, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--script", script, "--expect-code",
		"--test-seed", rfcB32, "--clock", "2009-02-13T23:31:30Z"); code != 0 || !strings.Contains(out, wantCode(t)) {
		t.Fatalf("test seed, --expect-code: exit %d\n%s", code, out)
	}
	if _, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--script", "press:voldown", "--expect-code", "--test-seed", rfcB32); code != exitNoCode {
		t.Fatalf("the home screen, --expect-code: exit %d, want 3", code)
	}
}

// camera run --control: the control API of a running headless camera,
// on loopback only; it keeps running until stopped.
func TestCameraRunControl(t *testing.T) {
	dir := initCamera(t, "QA-CTL", "body3")
	if _, errOut, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--control", "0.0.0.0:0"); code != exitUsage || !strings.Contains(errOut, "loopback") {
		t.Fatalf("--control on every address: exit %d %q, want 2", code, errOut)
	}
	m := startMain(t, Env{}, "camera", "run", "--state", dir, "--ui", "headless", "--test-seed", rfcB32, "--control", "127.0.0.1:0")
	addrRE := regexp.MustCompile(`control API on (http://127\.0\.0\.1:\d+)`)
	m.waitUntil(t, "the control API's address", func() bool { return addrRE.MatchString(m.stderr.String()) })
	base := addrRE.FindStringSubmatch(m.stderr.String())[1]
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/code")
	var ans struct {
		Code  string `json:"code"`
		Model string `json:"model"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil || code != 200 || len(ans.Code) != 6 || ans.Model != "body3" {
		t.Fatalf("GET /code: %d %s", code, body)
	}
	m.waitUntil(t, "the Authenticator screen printed", func() bool { return strings.Contains(m.stdout.String(), "AUTHENTICATOR") })
	resp, err := http.Post(base+"/press", "application/json", strings.NewReader(`{"button":"power"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, body := get("/screen"); code != 200 || !strings.Contains(body, `"screen":"home"`) {
		t.Fatalf("GET /screen after Power: %d %s", code, body)
	}
	select {
	case c := <-m.done:
		t.Fatalf("camera run exited (%d) while serving", c)
	default:
	}
	if c := m.stop(t); c != 0 {
		t.Fatalf("stopped: exit %d", c)
	}
	if _, err := http.Get(base + "/screen"); err == nil {
		t.Fatal("the control API still answers after the camera stopped")
	}
}

// A flood of half-open connections to the control API (each sends part of
// a request and waits) does not stop it answering a real request.
func TestCameraRunControlFlood(t *testing.T) {
	dir := initCamera(t, "QA-FLOOD", "body4")
	m := startMain(t, Env{}, "camera", "run", "--state", dir, "--ui", "headless", "--test-seed", rfcB32, "--control", "127.0.0.1:0")
	addrRE := regexp.MustCompile(`control API on http://(127\.0\.0\.1:\d+)`)
	m.waitUntil(t, "the control API's address", func() bool { return addrRE.MatchString(m.stderr.String()) })
	addr := addrRE.FindStringSubmatch(m.stderr.String())[1]
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		c.Write([]byte("GET /code HTTP/1.1\r\nHost: 127.0.0.1\r\n")) // never finished
		conns = append(conns, c)
	}
	resp, err := http.Get("http://" + addr + "/code")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /code during the flood: %d", resp.StatusCode)
	}
}
