package radius_test

import (
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testclock"

	"bufio"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/together"
	camradius "github.com/camotp/camotp/radius"
)

// fixture is a server with RADIUS on a loopback port, one client for
// 127.0.0.1, and two officers with provisioned cameras: alice (Body 4)
// and bob (Body 3).
type fixture struct {
	srv    *server.Server
	clock  *testclock.Shift
	secret string
	cams   map[string]*device.State
}

func newFixture(t *testing.T, rc server.RADIUSConfig) *fixture {
	t.Helper()
	clk := &testclock.Shift{}
	rc.Addr = "127.0.0.1:0"
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.Now = clk.Now
		c.RADIUS = &rc
	})
	f := &fixture{srv: srv, clock: clk, cams: map[string]*device.State{}}
	for _, u := range []string{"alice", "bob"} {
		testenv.User(t, srv, u, "pw-"+u+"-long")
	}
	f.cams["alice"] = testenv.ProvisionedCamera(t, srv, "BC4-A", device.Body4, "alice")
	f.cams["bob"] = testenv.ProvisionedCamera(t, srv, "BC3-B", device.Body3, "bob")
	f.secret = f.addClient(t, "loopback", "127.0.0.1/32")
	return f
}

// addClient registers a RADIUS client through the admin API and returns
// its secret.
func (f *fixture) addClient(t *testing.T, name, cidr string) string {
	t.Helper()
	code, body := testenv.API(t, f.srv, f.srv.AdminToken, "POST", "/api/v1/admin/radius/clients", camradius.AddClientRequest{Name: name, CIDR: cidr})
	if code != http.StatusCreated {
		t.Fatalf("add client: %d %v", code, body)
	}
	return body["secret"].(string)
}

func (f *fixture) code(t *testing.T, user string) string {
	return testenv.ScreenCode(t, f.cams[user], f.clock.Now())
}

// reply is an answer as a client saw it.
type reply struct {
	code    string // Access-Accept, Access-Challenge, Access-Reject; "" for none
	message string // the Reply-Messages, joined
	state   []byte
}

func needRadclient(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("radclient")
	if err != nil {
		t.Skip("radclient not installed (Debian freeradius-utils; .ci/run installs it): the RADIUS exchanges with a foreign client are not tested")
	}
	return path
}

// radclient sends one Access-Request with FreeRADIUS's radclient: attrs
// in its syntax, a Message-Authenticator unless noMA. It waits wait for
// an answer (no retries).
func radclient(t *testing.T, addr, secret string, wait time.Duration, noMA bool, attrs ...string) reply {
	t.Helper()
	bin := needRadclient(t)
	if !noMA {
		attrs = append(attrs, "Message-Authenticator = 0x00")
	}
	cmd := exec.Command(bin, "-x", "-r", "1", "-t", strconv.FormatFloat(wait.Seconds(), 'f', 1, 64), addr, "auth", secret)
	cmd.Stdin = strings.NewReader(strings.Join(attrs, ", ") + "\n")
	out, err := cmd.CombinedOutput() // exit status 1 when no answer came
	if !regexp.MustCompile(`(?m)^Sent Access-Request Id`).Match(out) {
		// radclient refused its arguments or input: not a silent
		// "no answer".
		t.Fatalf("radclient sent nothing (%v):\n%s", err, out)
	}
	var r reply
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	received := regexp.MustCompile(`^Received (Access-\w+) Id`)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if m := received.FindStringSubmatch(line); m != nil {
			r.code, in = m[1], true
			continue
		}
		if !in || !strings.HasPrefix(line, "\t") {
			if in && !strings.HasPrefix(line, "\t") && line != "" {
				in = false
			}
			continue
		}
		name, val, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		switch name {
		case "Reply-Message":
			s, err := strconv.Unquote(val)
			if err != nil {
				s = strings.Trim(val, `"`)
			}
			r.message += s
		case "State":
			b, err := hex.DecodeString(strings.TrimPrefix(val, "0x"))
			if err != nil {
				t.Fatalf("radclient state %q: %v", val, err)
			}
			r.state = b
		}
	}
	if testing.Verbose() {
		t.Logf("radclient %s:\n%s", strings.Join(attrs, ", "), out)
	}
	return r
}

func quote(s string) string { return strconv.Quote(s) }

// metric reads camotp_radius_requests_total{result} off /metrics.
func metric(t *testing.T, srv *server.Server, result string) int {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^camotp_radius_requests_total\{result="` + regexp.QuoteMeta(result) + `"\} (\d+)`)
	m := re.FindSubmatch(data)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitMetric waits (bounded) until the counter of result reaches want: a
// dropped request is counted once the server has finished with it.
func waitMetric(t *testing.T, srv *server.Server, result string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, srv, result)
		if got >= want {
			if got > want {
				t.Fatalf("camotp_radius_requests_total{result=%q} = %d, want %d", result, got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("camotp_radius_requests_total{result=%q} = %d, want %d", result, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// audit returns the login.mfa rows of user with result.
func audit(t *testing.T, srv *server.Server, user, result string) []model.AuditEntry {
	t.Helper()
	rows, err := srv.Store.AuditLog(context.Background(), user, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.AuditEntry
	for _, e := range rows {
		if e.Action == "login.mfa" && e.Result == result {
			out = append(out, e)
		}
	}
	return out
}

// TestRadclient drives every RADIUS exchange with FreeRADIUS's radclient,
// a client nobody here wrote, which also checks our Response
// Authenticator and Message-Authenticator.
func TestRadclient(t *testing.T) {
	needRadclient(t)
	f := newFixture(t, server.RADIUSConfig{Separator: ","})
	addr := f.srv.RADIUSAddr()
	const wait = 5 * time.Second // for answers; the no-answer cases wait 1 s
	const silent = time.Second

	t.Run("challenge then camera code", func(t *testing.T) {
		r := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`, `Calling-Station-Id = "203.0.113.7"`)
		if r.code != "Access-Challenge" || len(r.state) != 16 {
			t.Fatalf("password step: %+v", r)
		}
		for _, want := range []string{"Body 4", "Double-press Select", "Volume Down", "Press Select"} {
			if !strings.Contains(r.message, want) {
				t.Errorf("challenge message %q lacks %q", r.message, want)
			}
		}
		code := f.code(t, "alice")
		a := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = `+quote(code), "State = 0x"+hex.EncodeToString(r.state), `Calling-Station-Id = "203.0.113.7"`)
		if a.code != "Access-Accept" {
			t.Fatalf("code step: %+v", a)
		}
		// Audited under the end user's station at the NAS.
		ok := audit(t, f.srv, "alice", "ok")
		if len(ok) == 0 || ok[0].SourceIP != "203.0.113.7@127.0.0.1" {
			t.Fatalf("audit of the accepted code: %+v", ok)
		}
		// The NAS keeps its own session: camotp starts none, and the
		// pending sign-in is gone.
		if tokens, err := f.srv.Store.UserTokens(t.Context(), "alice"); err != nil || len(tokens) != 0 {
			t.Fatalf("camotp tokens of alice after Access-Accept: %+v (%v), want none", tokens, err)
		}
		// The State was used: answering it again is refused.
		again := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = `+quote(code), "State = 0x"+hex.EncodeToString(r.state))
		if again.code != "Access-Reject" || !strings.Contains(again.message, "expired or unknown") {
			t.Fatalf("State answered twice: %+v", again)
		}
	})

	t.Run("body 3 how-to", func(t *testing.T) {
		r := radclient(t, addr, f.secret, wait, false, `User-Name = "bob"`, `User-Password = "pw-bob-long"`)
		if r.code != "Access-Challenge" || !strings.Contains(r.message, "Body 3") || !strings.Contains(r.message, "Long-press Program") {
			t.Fatalf("bob's challenge: %+v", r)
		}
	})

	t.Run("wrong code then reused code", func(t *testing.T) {
		f.clock.Add(90 * time.Second) // a step alice has not used
		r := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		bad := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = "000000"`, "State = 0x"+hex.EncodeToString(r.state))
		if bad.code != "Access-Reject" || !strings.Contains(bad.message, "attempts left: 2") {
			t.Fatalf("wrong code: %+v", bad)
		}
		code := f.code(t, "alice")
		r = radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		if ok := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = `+quote(code), "State = 0x"+hex.EncodeToString(r.state)); ok.code != "Access-Accept" {
			t.Fatalf("right code: %+v", ok)
		}
		r = radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		reused := radclient(t, addr, f.secret, wait, false, `User-Name = "alice"`, `User-Password = `+quote(code), "State = 0x"+hex.EncodeToString(r.state))
		if reused.code != "Access-Reject" || !strings.Contains(reused.message, "Invalid one-time password") {
			t.Fatalf("reused code: %+v", reused)
		}
		if len(audit(t, f.srv, "alice", "replayed")) != 1 {
			t.Fatal("the reused code is not audited as replayed")
		}
	})

	t.Run("password and code in one request", func(t *testing.T) {
		f.clock.Add(90 * time.Second)
		r := radclient(t, addr, f.secret, wait, false, `User-Name = "bob"`, `User-Password = `+quote("pw-bob-long,"+f.code(t, "bob")))
		if r.code != "Access-Accept" {
			t.Fatalf("password,code: %+v", r)
		}
		r = radclient(t, addr, f.secret, wait, false, `User-Name = "bob"`, `User-Password = "wrong-password,123456"`)
		if r.code != "Access-Reject" || !strings.Contains(r.message, "invalid username or password") {
			t.Fatalf("wrong password,code: %+v", r)
		}
	})

	t.Run("wrong secret: no answer", func(t *testing.T) {
		before := metric(t, f.srv, camradius.ResultBadAuthenticator)
		r := radclient(t, addr, "not-the-secret", silent, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		if r.code != "" {
			t.Fatalf("answered a wrong secret: %+v", r)
		}
		waitMetric(t, f.srv, camradius.ResultBadAuthenticator, before+1)
	})

	t.Run("no Message-Authenticator: no answer", func(t *testing.T) {
		before := metric(t, f.srv, camradius.ResultNoAuthenticator)
		r := radclient(t, addr, f.secret, silent, true, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		if r.code != "" {
			t.Fatalf("answered without a Message-Authenticator: %+v", r)
		}
		waitMetric(t, f.srv, camradius.ResultNoAuthenticator, before+1)
	})

	t.Run("unknown client address: no answer", func(t *testing.T) {
		if code, body := testenv.API(t, f.srv, f.srv.AdminToken, "DELETE", "/api/v1/admin/radius/clients/loopback", nil); code != http.StatusOK {
			t.Fatalf("remove client: %d %v", code, body)
		}
		f.addClient(t, "elsewhere", "192.0.2.0/24")
		before := metric(t, f.srv, camradius.ResultUnknownClient)
		r := radclient(t, addr, f.secret, silent, false, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
		if r.code != "" {
			t.Fatalf("answered an unknown client: %+v", r)
		}
		waitMetric(t, f.srv, camradius.ResultUnknownClient, before+1)
	})
}

// TestRadclientLegacy: with --radius-allow-legacy a request without a
// Message-Authenticator is answered (and the answer carries one).
func TestRadclientLegacy(t *testing.T) {
	needRadclient(t)
	f := newFixture(t, server.RADIUSConfig{AllowLegacy: true})
	r := radclient(t, f.srv.RADIUSAddr(), f.secret, 5*time.Second, true, `User-Name = "alice"`, `User-Password = "pw-alice-long"`)
	if r.code != "Access-Challenge" {
		t.Fatalf("legacy request: %+v", r)
	}
}

// client is an in-process NAS: packets built with layeh.com/radius, the
// Message-Authenticator added, answers checked.
type client struct {
	t      testing.TB
	addr   string
	secret []byte
}

// exchange sends one Access-Request and returns the answer.
func (c client) exchange(attrs func(p *radius.Packet)) reply {
	c.t.Helper()
	p := radius.New(radius.CodeAccessRequest, c.secret)
	p.Add(80, make(radius.Attribute, 16))
	attrs(p)
	raw, err := p.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := camradius.SignRequest(raw, c.secret); err != nil {
		c.t.Fatal(err)
	}
	conn, err := net.Dial("udp", c.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(raw); err != nil {
		c.t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no answer: %v", err)
	}
	if err := camradius.CheckResponse(buf[:n], raw, c.secret); err != nil {
		c.t.Fatal(err)
	}
	resp, err := radius.Parse(buf[:n], c.secret)
	if err != nil {
		c.t.Fatal(err)
	}
	msgs, _ := rfc2865.ReplyMessage_GetStrings(resp)
	return reply{code: resp.Code.String(), message: strings.Join(msgs, ""), state: rfc2865.State_Get(resp)}
}

func pap(user, pw string, extra ...func(*radius.Packet)) func(*radius.Packet) {
	return func(p *radius.Packet) {
		rfc2865.UserName_SetString(p, user)
		rfc2865.UserPassword_SetString(p, pw)
		for _, e := range extra {
			e(p)
		}
	}
}

func withState(s []byte) func(*radius.Packet) {
	return func(p *radius.Packet) { rfc2865.State_Set(p, s) }
}

func withStation(s string) func(*radius.Packet) {
	return func(p *radius.Packet) { rfc2865.CallingStationID_SetString(p, s) }
}

// TestParallelWrongCodes: 50 wrong codes for one account answered at once
// through one NAS get at most the throttle limit evaluated (counted in the
// audit log); every one is refused. The counters key on the NAS and the
// Calling-Station-Id, so the blocked pair locks out neither another user
// on the same NAS nor the same user at another station.
func TestParallelWrongCodes(t *testing.T) {
	f := newFixture(t, server.RADIUSConfig{})
	c := client{t: t, addr: f.srv.RADIUSAddr(), secret: []byte(f.secret)}
	const n = 50
	states := make([][]byte, n)
	for i := range states {
		r := c.exchange(pap("alice", "pw-alice-long", withStation("198.51.100.9")))
		if r.code != "Access-Challenge" {
			t.Fatalf("challenge %d: %+v", i, r)
		}
		states[i] = r.state
	}
	answers := make([]reply, n)
	together.Run(n, func(i int) {
		answers[i] = c.exchange(pap("alice", "000000", withState(states[i]), withStation("198.51.100.9")))
	})
	blocked := 0
	for i, a := range answers {
		if a.code != "Access-Reject" {
			t.Fatalf("answer %d: %+v", i, a)
		}
		if strings.Contains(a.message, "try again in") {
			blocked++
		}
	}
	invalid := audit(t, f.srv, "alice", "invalid")
	if max := 3; len(invalid) > max || len(invalid) == 0 {
		t.Fatalf("%d wrong codes evaluated, want 1..%d", len(invalid), max)
	}
	if blocked == 0 {
		t.Fatal("no answer says the pair is blocked")
	}
	for _, e := range invalid {
		if e.SourceIP != "198.51.100.9@127.0.0.1" {
			t.Fatalf("audit source %q, want station@nas", e.SourceIP)
		}
	}
	t.Logf("%d of %d wrong codes evaluated; %d answers say blocked", len(invalid), n, blocked)

	// Another officer on the same NAS signs in.
	r := c.exchange(pap("bob", "pw-bob-long", withStation("198.51.100.9")))
	if r.code != "Access-Challenge" {
		t.Fatalf("bob's password step: %+v", r)
	}
	if a := c.exchange(pap("bob", f.code(t, "bob"), withState(r.state), withStation("198.51.100.9"))); a.code != "Access-Accept" {
		t.Fatalf("bob is locked out by alice's failures: %+v", a)
	}
	// Alice from another station is not blocked by the first one's pair.
	r = c.exchange(pap("alice", "pw-alice-long", withStation("198.51.100.10")))
	if a := c.exchange(pap("alice", f.code(t, "alice"), withState(r.state), withStation("198.51.100.10"))); a.code != "Access-Accept" {
		t.Fatalf("alice at another station: %+v", a)
	}
	// At the blocked station she is refused with the time to wait.
	r = c.exchange(pap("alice", "pw-alice-long", withStation("198.51.100.9")))
	if a := c.exchange(pap("alice", "123456", withState(r.state), withStation("198.51.100.9"))); a.code != "Access-Reject" || !strings.Contains(a.message, "try again in 10 minutes") {
		t.Fatalf("blocked pair: %+v", a)
	}
}

// TestAdminRoutesNeedToken: the client routes are behind the admin token.
func TestAdminRoutesNeedToken(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/radius/clients"},
		{"POST", "/api/v1/admin/radius/clients"},
		{"DELETE", "/api/v1/admin/radius/clients/x"},
	} {
		if code, _ := testenv.API(t, srv, "wrong-token", tc.method, tc.path, camradius.AddClientRequest{Name: "x", CIDR: "10.0.0.1"}); code != http.StatusUnauthorized {
			t.Errorf("%s %s without the admin token: %d", tc.method, tc.path, code)
		}
	}
	if code, body := testenv.API(t, srv, srv.AdminToken, "POST", "/api/v1/admin/radius/clients", camradius.AddClientRequest{Name: "x", CIDR: "10.0.0.1"}); code != http.StatusCreated {
		t.Fatalf("with the token: %d %v", code, body)
	}
	rows, _ := srv.Store.AuditLog(context.Background(), "x", 10)
	if len(rows) != 1 || rows[0].Action != "radius.client.add" || strings.Contains(rows[0].Detail, "secret") {
		t.Fatalf("audit: %+v", rows)
	}
}
