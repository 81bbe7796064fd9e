package provisioning_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
	"github.com/camotp/camotp/provisioning"
)

// camClock is a camera's crystal: the server's test clock, off by an
// offset and gaining ppm parts per million since epoch (device.DriftClock),
// which the test changes as the camera drifts.
type camClock struct {
	mu sync.Mutex
	d  device.DriftClock
}

func (c *camClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d.Now()
}

// drift makes the camera off by exactly total now, ppm of it from its
// crystal since epoch and the rest a fixed offset.
func (c *camClock) drift(total time.Duration, ppm float64, epoch time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.d.Base.Now()
	gained := time.Duration(float64(now.Sub(epoch)) * ppm / 1e6)
	c.d = device.DriftClock{Base: c.d.Base, Offset: total - gained, PPM: ppm, Epoch: epoch}
}

// backends runs fn against the SQLite file and, when a PostgreSQL cluster
// is at hand (pgtest), against PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, db string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) {
		if !pgtest.Available() {
			t.Skip("no PostgreSQL: set " + pgtest.EnvVar + " (scripts/pg-test-cluster)")
		}
		fn(t, pgtest.URL(t))
	})
}

// waitFor polls cond until it holds (a condition, not a guess at time).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// officer is one camera of the telemetry fleet and the officer it is
// assigned to.
type officer struct {
	user  string
	st    *device.State
	clock *camClock
	agent *provisioning.Agent
}

// telemetryFleet starts a server on db whose clock is clk and n officers
// with provisioned cameras whose clocks keep the server's time; the
// cameras send no clock reports yet.
func telemetryFleet(t *testing.T, db string, clk *testclock.Shift, n int) (*server.Server, []*officer) {
	t.Helper()
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) { c.Now, c.DB = clk.Now, db })
	broker := "tcp://" + srv.MQTTAddr()
	out := make([]*officer, n)
	for i := range out {
		o := &officer{user: fmt.Sprintf("officer%02d", i), clock: &camClock{d: device.DriftClock{Base: clk}}}
		serial := fmt.Sprintf("BC4-T%03d", i)
		testenv.User(t, srv, o.user, "pw-"+o.user+"-long")
		o.st = testenv.Camera(t, srv, serial, device.Body4)
		o.agent = testenv.AgentWith(t, o.st, provisioning.LinkConfig{Broker: broker, Clock: o.clock, ClockReportEvery: -1})
		out[i] = o
	}
	for _, o := range out {
		serial := o.st.Identity().Serial
		testenv.WaitCamera(t, srv.Store, serial, model.StateProvisioned, testenv.Op(t, srv, serial, "provision"))
		testenv.Assign(t, srv, serial, o.user)
	}
	return srv, out
}

// signIn signs the officer in through the JSON API with the code their
// camera's screen shows now, once: the status of the code's answer.
func signIn(t *testing.T, srv *server.Server, o *officer) (int, map[string]any) {
	t.Helper()
	status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": o.user, "password": "pw-" + o.user + "-long"})
	if status != 200 || body["authenticator"] != "bodycam" {
		t.Fatalf("login %s: %d %v", o.user, status, body)
	}
	code := testenv.ScreenCode(t, o.st, o.clock.Now())
	return testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": code})
}

// reconnectReporting replaces the officer's camera link by one that
// answers clock challenges (the server's on connect, then one it asks
// for every default period) and waits until the server recorded a
// report received after since.
func reconnectReporting(t *testing.T, srv *server.Server, o *officer, since time.Time) {
	t.Helper()
	o.agent.Stop()
	o.agent = testenv.AgentWith(t, o.st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: o.clock})
	waitReport(t, srv, o.st.Identity().Serial, since)
}

// waitReport waits until the server recorded a report of serial received
// at or after since, and returns it.
func waitReport(t *testing.T, srv *server.Server, serial string, since time.Time) model.CameraClock {
	t.Helper()
	var k model.CameraClock
	waitFor(t, "a clock report of "+serial, func() bool {
		var err error
		k, err = srv.Store.CameraClock(context.Background(), serial)
		return err == nil && !k.At.Before(since.Truncate(time.Millisecond)) // the store keeps milliseconds
	})
	return k
}

// A fleet whose cameras drifted ±2 to ±4 steps since their last sign-in
// (offset and crystal ppm): without clock reports no officer signs in at
// the first try (their codes are outside the learnt window: "clock is
// off"); with them, every officer does. Real server, embedded broker,
// camera agents, camera screens, on both backends.
func TestClockTelemetryFirstTry(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, fleet := telemetryFleet(t, db, clk, 12)
		// Each officer signs in once with the camera on time: the learnt
		// drift is 0.
		for _, o := range fleet {
			if status, body := signIn(t, srv, o); status != 200 {
				t.Fatalf("%s on time: %d %v", o.user, status, body)
			}
		}
		// Then the cameras drift: ±2..±4 steps and a third, part crystal
		// (ppm since a sync 20 days ago), part offset. (The third keeps
		// a code read just before a step boundary and checked just after
		// it 2 steps off, not 1: the outcome does not hang on timing.)
		clk.Add(2 * time.Minute)
		epoch := clk.Now().Add(-20 * 24 * time.Hour)
		steps := []int{2, -2, 3, -3, 4, -4}
		offset := func(i int) time.Duration {
			k := steps[i%len(steps)]
			return time.Duration(k)*30*time.Second + time.Duration(k/max(k, -k))*10*time.Second
		}
		for i, o := range fleet {
			ppm := float64(10+5*i) * float64(offset(i).Seconds()) / offset(i).Abs().Seconds()
			o.clock.drift(offset(i), ppm, epoch)
		}
		try := func(phase string) int {
			passed := 0
			for _, o := range fleet {
				status, body := signIn(t, srv, o)
				if status == 200 {
					passed++
				} else if testing.Verbose() {
					t.Logf("%s %s: %d %v", phase, o.user, status, body["error"])
				}
			}
			return passed
		}
		before := try("without telemetry")
		// Telemetry on: the cameras reconnect and report their clocks.
		clk.Add(2 * time.Minute)
		since := clk.Now()
		for _, o := range fleet {
			reconnectReporting(t, srv, o, since)
		}
		for i, o := range fleet {
			k, err := srv.Store.CameraClock(t.Context(), o.st.Identity().Serial)
			want := offset(i)
			if err != nil || (k.Offset-want).Abs() > 5*time.Second+k.RTT {
				t.Fatalf("%s reported offset %v (rtt %v) %v, want %v", o.user, k.Offset, k.RTT, err, want)
			}
		}
		clk.Add(time.Minute)
		after := try("with telemetry")
		t.Logf("first-try sign-ins of %d officers whose cameras drifted ±2..±4 steps: %d without clock telemetry, %d with it", len(fleet), before, after)
		if before != 0 || after != len(fleet) {
			t.Fatalf("first-try sign-ins: %d/%d without telemetry (want 0), %d/%d with (want all)", before, len(fleet), after, len(fleet))
		}
	})
}

// A camera whose signed reports lie about its clock (its agent reports a
// clock 5 steps fast while its screen keeps time) still signs in (the
// learnt window), is flagged once (audit, log, metric) and its reports no
// longer move the window: a code at the reported offset is refused as
// clock-off. A report that agrees again, and a code, clear the flag.
func TestLyingClockReportFlagged(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, fleet := telemetryFleet(t, db, clk, 1)
		o := fleet[0]
		serial := o.st.Identity().Serial
		liar := &camClock{d: device.DriftClock{Base: clk, Offset: 5 * 30 * time.Second}}
		since := clk.Now()
		o.agent.Stop()
		o.agent = testenv.AgentWith(t, o.st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: liar})
		if k := waitReport(t, srv, serial, since); k.Offset < 140*time.Second || k.Mismatch() {
			t.Fatalf("lying report recorded as %+v", k)
		}
		if status, body := signIn(t, srv, o); status != 200 {
			t.Fatalf("camera on time with a lying report: %d %v, want signed in", status, body)
		}
		k, err := srv.Store.CameraClock(t.Context(), serial)
		if err != nil || !k.Mismatch() {
			t.Fatalf("after a code 5 steps from the report: %+v %v, want flagged", k, err)
		}
		// The window does not follow the flagged report: a code at its
		// offset is clock-off, not accepted.
		clk.Add(time.Minute)
		o.clock.drift(5*30*time.Second, 0, clk.Now())
		if status, body := signIn(t, srv, o); status == 200 || !strings.Contains(fmt.Sprint(body["error"]), "clock") {
			t.Fatalf("code at the flagged report's offset: %d %v, want refused as clock-off", status, body)
		}
		o.clock.drift(0, 0, clk.Now())
		metricsOf(t, srv, `camotp_camera_clocks_flagged{flag="mismatch"} 1`)
		// The camera's reports agree again: the next code clears the flag.
		since = clk.Now()
		o.agent.Stop()
		o.agent = testenv.AgentWith(t, o.st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: o.clock})
		waitReport(t, srv, serial, since)
		clk.Add(time.Minute)
		if status, body := signIn(t, srv, o); status != 200 {
			t.Fatalf("camera on time, honest report: %d %v", status, body)
		}
		if k, _ := srv.Store.CameraClock(t.Context(), serial); k.Mismatch() {
			t.Fatal("flag not cleared by an agreeing code")
		}
		rows, err := srv.Store.AuditLog(t.Context(), serial, 100)
		if err != nil {
			t.Fatal(err)
		}
		flags := map[string]int{}
		for _, e := range rows {
			if e.Action == "camera.clock-mismatch" {
				flags[e.Result]++
			}
		}
		if flags["flagged"] != 1 || flags["cleared"] != 1 {
			t.Fatalf("audit of the mismatch: %v, want flagged once, cleared once", flags)
		}
	})
}

// metricsOf fetches /metrics and fails unless it has every line of want.
func metricsOf(t *testing.T, srv *server.Server, want ...string) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if !strings.Contains(string(data), w+"\n") {
			t.Fatalf("/metrics lacks %q", w)
		}
	}
	return string(data)
}

// A report replayed (the same one again, or an older counter answering a
// fresh challenge) or forged (another camera's key, a changed field, no
// signature) changes nothing recorded; each is counted, the forged ones
// audited once a minute. A report of a camera from before clock
// challenges is not recorded either, nor audited.
func TestClockReportReplayedOrForged(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, fleet := telemetryFleet(t, db, clk, 2)
		o, other := fleet[0], fleet[1]
		serial := o.st.Identity().Serial
		clk.Freeze() // round trips to the millisecond: only the test moves the clock
		deliverReport := func(r provisioning.ClockReport) {
			data, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			deliver(srv, serial, data)
		}
		key := o.st.Identity().Key
		// A genuine report answering the challenge: recorded.
		nonce := challenge(t, srv, serial)
		next := provisioning.SignClockReport(key, serial, 1000, clk.Now().Add(40*time.Second), nonce)
		deliverReport(next)
		rec, err := srv.Store.CameraClock(t.Context(), serial)
		if err != nil || rec.Seq != 1000 || rec.Offset != 40*time.Second || rec.RTT != 0 {
			t.Fatalf("genuine report: %+v %v", rec, err)
		}
		base := srv.Provisioning.ClockReports()
		clk.Add(time.Second)
		// The others answer the next challenge: only a genuine one spends it.
		nonce = challenge(t, srv, serial)
		forgedBy := provisioning.SignClockReport(other.st.Identity().Key, serial, 1100, clk.Now().Add(-90*time.Second), nonce)
		changed := provisioning.SignClockReport(key, serial, 1005, clk.Now(), nonce)
		changed.Time += 600000
		unsigned := changed
		unsigned.Seq, unsigned.Sig = 1007, make([]byte, 64)
		for _, r := range []provisioning.ClockReport{
			forgedBy, changed, unsigned,
			next, // replayed as is: its challenge is spent
			provisioning.SignClockReport(key, serial, 999, clk.Now().Add(-3*time.Minute), nonce), // an older counter, even signed and answering
		} {
			deliverReport(r)
		}
		got, err := srv.Store.CameraClock(t.Context(), serial)
		if err != nil || got.Seq != rec.Seq || got.Offset != rec.Offset || !got.At.Equal(rec.At) || got.RTT != rec.RTT {
			t.Fatalf("after replayed and forged reports: %+v %v, want unchanged %+v", got, err, rec)
		}
		n := srv.Provisioning.ClockReports()
		if n.Replayed-base.Replayed != 1 || n.Unchallenged-base.Unchallenged != 1 || n.Forged-base.Forged != 3 || n.Recorded != base.Recorded {
			t.Fatalf("counted %+v after %+v, want 1 more replayed, 1 unchallenged, 3 forged, none recorded", n, base)
		}
		metricsOf(t, srv, fmt.Sprintf(`camotp_camera_clock_reports_total{result="forged"} %d`, n.Forged),
			fmt.Sprintf(`camotp_camera_clock_reports_total{result="unchallenged"} %d`, n.Unchallenged))
		// The three forged reports of one minute: counted each, audited
		// once (a broker flooding them does not flood the audit log).
		forgedRows := 0
		if err := srv.Store.AuditEach(t.Context(), model.AuditFilter{Subject: serial, Action: "camera.clock", Result: "error: signature does not verify"}, func(model.AuditEntry) error {
			forgedRows++
			return nil
		}); err != nil || forgedRows != 1 {
			t.Fatalf("%d audit rows of forged reports (%v), want 1 for three in a minute", forgedRows, err)
		}
		// A camera from before clock challenges reports unasked: not
		// recorded, counted unchallenged, neither malformed nor audited.
		legacy := []byte(fmt.Sprintf(`{"v":1,"serial":%q,"status":"clock","seq":2000,"time":%d,"rtt":14,"sig":%q}`,
			serial, clk.Now().UnixMilli(), base64.StdEncoding.EncodeToString(make([]byte, 64))))
		deliver(srv, serial, legacy)
		after := srv.Provisioning.ClockReports()
		if after.Unchallenged != n.Unchallenged+1 || after.Malformed != n.Malformed || after.Recorded != n.Recorded {
			t.Fatalf("pre-challenge report: %+v after %+v", after, n)
		}
		// One just over the size bound is dropped unread.
		data, _ := json.Marshal(provisioning.SignClockReport(key, serial, 1010, clk.Now(), challenge(t, srv, serial)))
		big := append(data[:len(data)-1:len(data)-1], []byte(`,"pad":"`+strings.Repeat("x", provisioning.MaxClockReport)+`"}`)...)
		deliver(srv, serial, big)
		if got := srv.Provisioning.ClockReports(); got.Malformed != after.Malformed+1 || got.Recorded != after.Recorded {
			t.Fatalf("oversized report: %+v", got)
		}
		rows := 0
		if err := srv.Store.AuditEach(t.Context(), model.AuditFilter{Subject: serial, Action: "camera.clock"}, func(model.AuditEntry) error {
			rows++
			return nil
		}); err != nil || rows != 2 {
			t.Fatalf("%d audit rows of refused reports (%v), want 2 (forged, unchallenged)", rows, err)
		}
	})
}

// A camera off by more than --clock-drift-alert is flagged drifting once
// per episode (audit, metric, listing) and cleared when it reports within
// it again.
func TestClockDriftAlert(t *testing.T) {
	clk := &testclock.Shift{}
	srv, fleet := telemetryFleet(t, "", clk, 2)
	o := fleet[0]
	serial := o.st.Identity().Serial
	o.clock.drift(25*time.Second, 0, clk.Now())
	since := clk.Now()
	for _, f := range fleet {
		reconnectReporting(t, srv, f, since)
	}
	for range 2 { // a second report goes on with the same episode
		clk.Add(time.Second)
		at := clk.Now()
		if err := o.agent.ReportClock(); err != nil {
			t.Fatal(err)
		}
		waitReport(t, srv, serial, at)
	}
	k, err := srv.Store.CameraClock(t.Context(), serial)
	if err != nil || !k.Drifting() || !k.DriftingSince.Before(k.At) {
		t.Fatalf("camera 25 s fast: %+v %v, want drifting since its first report", k, err)
	}
	metricsOf(t, srv, `camotp_camera_clocks_flagged{flag="drifting"} 1`, `camotp_camera_clock_offset_seconds_count 2`,
		`camotp_camera_clock_offset_seconds_bucket{le="20"} 1`, `camotp_camera_clock_offset_seconds_bucket{le="30"} 2`)
	status, list := listDrifting(t, srv)
	if status != 200 || len(list) != 1 || list[0]["serial"] != serial {
		t.Fatalf("drifting cameras: %d %v", status, list)
	}
	rows, err := srv.Store.AuditLog(t.Context(), serial, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range rows {
		if e.Action == "camera.clock-drift" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d drift audit rows for one episode, want 1", n)
	}
	// Synced: within the threshold again.
	o.clock.drift(time.Second, 0, clk.Now())
	clk.Add(time.Second)
	at := clk.Now()
	if err := o.agent.ReportClock(); err != nil {
		t.Fatal(err)
	}
	if k := waitReport(t, srv, serial, at); k.Drifting() {
		t.Fatalf("synced camera still drifting: %+v", k)
	}
	if status, list := listDrifting(t, srv); status != 200 || len(list) != 0 {
		t.Fatalf("drifting cameras after the sync: %d %v", status, list)
	}
}

// listDrifting asks the admin API for the flagged cameras' clocks.
func listDrifting(t *testing.T, srv *server.Server) (int, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.HTTPAddr()+"/api/v1/admin/clocks?flagged=1", nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A camera reports on connect and then, asking for a challenge, every
// ClockReportEvery, and a camera restarted on its state directory goes
// on with counters the server takes (they rise across restarts).
func TestClockReportsPeriodicAndAcrossRestart(t *testing.T) {
	clk := &testclock.Shift{}
	srv, fleet := telemetryFleet(t, "", clk, 1)
	o := fleet[0]
	serial := o.st.Identity().Serial
	o.agent.Stop()
	o.agent = testenv.AgentWith(t, o.st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: o.clock, ClockReportEvery: 20 * time.Millisecond})
	var first model.CameraClock
	waitFor(t, "a first report", func() bool {
		var err error
		first, err = srv.Store.CameraClock(t.Context(), serial)
		return err == nil
	})
	waitFor(t, "three more reports", func() bool {
		k, err := srv.Store.CameraClock(t.Context(), serial)
		return err == nil && k.Seq >= first.Seq+3
	})
	o.agent.Stop()
	before, err := srv.Store.CameraClock(t.Context(), serial)
	if err != nil {
		t.Fatal(err)
	}
	// The camera restarts: its state read afresh from its directory.
	st, err := device.OpenState(o.st.Dir())
	if err != nil {
		t.Fatal(err)
	}
	testenv.AgentWith(t, st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: o.clock})
	waitFor(t, "the restarted camera's report", func() bool {
		k, err := srv.Store.CameraClock(t.Context(), serial)
		return err == nil && k.Seq > before.Seq
	})
	if n := srv.Provisioning.ClockReports(); n.Forged != 0 || n.Malformed != 0 {
		t.Fatalf("reports counted %+v", n)
	}
}
