package provisioning_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// syncBuffer is a log destination the server's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// quickSignIn makes password hashes cheap and the throttle limits high:
// the tests below hammer one account with codes that race each other,
// and the losers count as failures.
func quickSignIn(c *server.Config) {
	cfg := signin.DefaultConfig()
	cfg.Argon2 = password.Params{Memory: 8 << 10, Time: 1, Threads: 1}
	cfg.Limits.MaxFailures, cfg.Limits.AccountCeiling = 100_000, 100_000
	c.SignIn = &cfg
}

// post calls the server without failing the test (for goroutines): the
// status and, into out, the body (a *string: as it is, whatever the
// status; other values: a 2xx body decoded from JSON; nil: dropped).
func post(srv *server.Server, token, path string, in, out any) (int, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("POST", "http://"+srv.HTTPAddr()+path, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if text, ok := out.(*string); ok {
		*text = string(body) // the body whatever the status
		return resp.StatusCode, nil
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(body, out); err != nil {
			return 0, fmt.Errorf("decode %s: %w", body, err)
		}
	}
	return resp.StatusCode, nil
}

// metric reads one sample of the server's /metrics (no labels), -1 when
// absent.
func metric(t *testing.T, srv *server.Server, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// TestLostCameraEndToEnd: a camera is reported lost while it is offline
// (eight reports at once through the admin API: one changes it, the others
// are told it was lost already); its officer falls back to setting up the
// organisation's other method; the report is logged, counted and audited;
// found and assign are refused. The camera reconnects: the wipe queued for
// it erases its seed and the server records the camera's signed proof.
// Found is still refused until it is provisioned again; then it is found,
// assigned, and its new codes sign its officer in.
func TestLostCameraEndToEnd(t *testing.T) {
	var logs syncBuffer
	f := testenv.NewFleet(t, quickSignIn, func(c *server.Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	srv := f.Srv
	testenv.User(t, srv, "erin", "pw-erin-long")
	cam, agent := testenv.ProvisionedCameraAgent(t, srv, "BC4-L", device.Body4, "erin")
	seed := mustSeed(t, cam)
	agent.Stop() // offline: what the report queues waits for it
	if got := metric(t, srv, "camotp_cameras_lost"); got != 0 {
		t.Fatalf("camotp_cameras_lost before = %v", got)
	}

	const reporters = 8
	outs := make([]provisioning.LostResponse, reporters)
	statuses := make([]int, reporters)
	errs := make([]error, reporters)
	together.Run(reporters, func(i int) {
		statuses[i], errs[i] = post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/report-lost",
			provisioning.LostRequest{Reason: "stolen from patrol car 12"}, &outs[i])
	})
	var first *provisioning.LostResponse
	for i := range outs {
		if errs[i] != nil || statuses[i] != http.StatusOK {
			t.Fatalf("report %d: %d %v", i, statuses[i], errs[i])
		}
		if outs[i].Already {
			if !strings.Contains(outs[i].Message, "already reported lost") {
				t.Fatalf("repeat message %q", outs[i].Message)
			}
			continue
		}
		if first != nil {
			t.Fatalf("two reports changed the camera: %+v and %+v", *first, outs[i])
		}
		first = &outs[i]
	}
	if first == nil || first.Officer != "erin" || first.WipeVersion != seed.Version+1 || !first.WipePending ||
		first.Camera.Lost == nil || first.Camera.Lost.Reason != "stolen from patrol car 12" || first.Camera.Lost.By != "admin" {
		t.Fatalf("the report: %+v", first)
	}
	c, _ := srv.Store.Camera(context.Background(), "BC4-L")
	if c.State != model.StateWiping || c.AssignedUser != "" || c.Lost == nil {
		t.Fatalf("camera after the report: %+v", c)
	}
	if _, err := srv.Store.ActiveSeed(context.Background(), "BC4-L"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("active seed after the report: %v", err)
	}
	if _, err := cam.Seed(); err != nil {
		t.Fatalf("the offline camera lost its seed before it heard of the wipe: %v", err)
	}
	// The officer falls back: the organisation allows an authenticator
	// app, which erin must now set up; with the camera alone allowed, she
	// is told to contact her administrator.
	if code, body := f.Login(t, "erin", "pw-erin-long"); code != 200 || body["authenticator"] != signin.MethodSetup {
		t.Fatalf("erin's sign-in after the report: %d %v", code, body)
	}
	f.SetPolicy(t, true, signin.MethodBodycam)
	if code, body := f.Login(t, "erin", "pw-erin-long"); code == 200 || !strings.Contains(fmt.Sprint(body), "contact your fleet administrator") {
		t.Fatalf("erin's sign-in with the camera alone allowed: %d %v", code, body)
	}
	f.SetPolicy(t, true, signin.MethodBodycam, signin.MethodApp)
	// Logged, counted, audited.
	if got := metric(t, srv, "camotp_cameras_reported_lost_total"); got != 1 {
		t.Fatalf("camotp_cameras_reported_lost_total = %v, want 1 (repeats are not counted)", got)
	}
	if got := metric(t, srv, "camotp_cameras_lost"); got != 1 {
		t.Fatalf("camotp_cameras_lost = %v", got)
	}
	warn := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "camera reported lost:") {
			warn = l
		}
	}
	for _, want := range []string{"level=WARN", "serial=BC4-L", "officer=erin", "actor=admin", `reason="stolen from patrol car 12"`} {
		if !strings.Contains(warn, want) {
			t.Fatalf("alert lacks %s: %q", want, warn)
		}
	}
	if strings.Contains(logs.String(), seed.Base32()) {
		t.Fatal("the seed is in the log")
	}
	log, _ := srv.Store.AuditLog(context.Background(), "BC4-L", 50)
	reports := 0
	for _, e := range log {
		if e.Action == "camera.report-lost" {
			reports++
		}
	}
	if reports != reporters {
		t.Fatalf("%d report rows, want %d", reports, reporters)
	}
	// Refused while lost: found (the wipe is not proven), assign.
	var msg string
	if code, _ := post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/found", struct{}{}, &msg); code != http.StatusConflict || !strings.Contains(msg, "wipe is not proven yet") {
		t.Fatalf("found while wiping: %d %s", code, msg)
	}
	if code, _ := post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/assign", provisioning.AssignRequest{User: "erin"}, &msg); code != http.StatusConflict || !strings.Contains(msg, "reported lost") {
		t.Fatalf("assign while lost: %d %s", code, msg)
	}
	if code, _ := post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/report-lost", provisioning.LostRequest{Reason: "two\nlines"}, &msg); code != http.StatusBadRequest {
		t.Fatalf("a reason on two lines: %d %s", code, msg)
	}
	if code, _ := post(srv, srv.AdminToken, "/api/v1/admin/cameras/NOPE-1/report-lost", provisioning.LostRequest{}, &msg); code != http.StatusNotFound {
		t.Fatalf("unknown serial: %d %s", code, msg)
	}

	// The camera comes back: the wipe reaches it, it erases its seed and
	// proves it.
	testenv.Agent(t, cam, "tcp://"+srv.MQTTAddr())
	testenv.WaitCamera(t, srv.Store, "BC4-L", model.StateWiped, first.WipeVersion)
	if _, err := cam.Seed(); !errors.Is(err, device.ErrNoSeed) {
		t.Fatalf("camera still holds a seed: %v", err)
	}
	disk, err := device.OpenState(cam.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Seed(); !errors.Is(err, device.ErrNoSeed) {
		t.Fatalf("the seed file still holds a seed: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(cam.Dir(), "seed.json")); err == nil && bytes.Contains(data, []byte("secret")) {
		t.Fatalf("seed file: %s", data)
	}
	proofs, err := srv.Store.AuditPage(context.Background(), model.AuditQuery{AuditFilter: model.AuditFilter{Subject: "BC4-L",
		Action: "wipe.proof", Result: "ok", Actor: "camera:BC4-L"}, Limit: 10})
	if err != nil || len(proofs) != 1 || proofs[0].Detail != fmt.Sprintf("version %d", first.WipeVersion) {
		t.Fatalf("the camera's wipe proof in the audit log: %+v %v", proofs, err)
	}
	if code, _ := post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/found", struct{}{}, &msg); code != http.StatusConflict || !strings.Contains(msg, "fresh provision") {
		t.Fatalf("found once wiped: %d %s", code, msg)
	}
	// Provisioned again: found, assigned, and its new codes work.
	v := testenv.Op(t, srv, "BC4-L", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-L", model.StateProvisioned, v)
	var found model.Camera
	if code, err := post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-L/found", struct{}{}, &found); code != http.StatusOK || err != nil || found.Lost != nil {
		t.Fatalf("found after the fresh provision: %d %v %+v", code, err, found)
	}
	if got := metric(t, srv, "camotp_cameras_lost"); got != 0 {
		t.Fatalf("camotp_cameras_lost after found = %v", got)
	}
	testenv.Assign(t, srv, "BC4-L", "erin")
	tok := f.Pending(t, "erin")
	if code, body := f.Verify(t, tok, testenv.ScreenCode(t, cam, f.Clock.Now())); code != 200 {
		t.Fatalf("erin with the camera found: %d %v", code, body)
	}
	if mustSeed(t, cam).Version != v || v <= first.WipeVersion {
		t.Fatalf("camera seed version %d, provision %d, wipe %d", mustSeed(t, cam).Version, v, first.WipeVersion)
	}
}

// verifyOutcome is one sign-in attempt of the race below.
type verifyOutcome struct {
	status int
	err    error
}

// TestReportLostWhileSigningIn: codes read off the real camera are typed
// into many sign-ins at once, round after round (one 30-second step each),
// and in one round a report-lost is released with them. Before the report
// every round lets exactly one sign-in through (the replay rule: one per
// step); a sign-in of the report's round passes only if it committed
// before the report (its audit row is older); once the report has
// returned, no code of the camera passes.
//
// It runs on SQLite and, when a cluster is at hand, on PostgreSQL (where
// the report and a sign-in's commit meet on the row of the camera's replay
// record, and an audit row's ID is taken before its commit).
func TestReportLostWhileSigningIn(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { reportLostWhileSigningIn(t) })
	t.Run("postgres", func(t *testing.T) {
		if !pgtest.Available() {
			t.Skip("no PostgreSQL cluster (" + pgtest.EnvVar + ")")
		}
		db := pgtest.URL(t)
		reportLostWhileSigningIn(t, func(c *server.Config) { c.DB = db })
	})
}

func reportLostWhileSigningIn(t *testing.T, mods ...func(*server.Config)) {
	f := testenv.NewFleet(t, append(mods, quickSignIn)...)
	srv := f.Srv
	testenv.User(t, srv, "erin", "pw-erin-long")
	cam, agent := testenv.ProvisionedCameraAgent(t, srv, "BC4-R", device.Body4, "erin")
	agent.Stop() // it keeps its seed: its codes can be read all along

	const racers, rounds, reportRound = 8, 6, 3
	tokens := make([][]string, rounds)
	for r := range tokens {
		for range racers {
			tokens[r] = append(tokens[r], f.Pending(t, "erin"))
		}
	}
	var reportErr error
	reportStatus := 0
	outcomes := make([][]verifyOutcome, rounds)
	for r := range rounds {
		f.Clock.Add(30 * time.Second) // a step of its own
		code := testenv.ScreenCode(t, cam, f.Clock.Now())
		outcomes[r] = make([]verifyOutcome, racers)
		n := racers
		if r == reportRound {
			n++
		}
		together.Run(n, func(i int) {
			if i == racers {
				reportStatus, reportErr = post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-R/report-lost", provisioning.LostRequest{Reason: "race"}, nil)
				return
			}
			st, err := post(srv, "", "/api/v1/auth/verify", map[string]string{"token": tokens[r][i], "code": code}, nil)
			outcomes[r][i] = verifyOutcome{st, err}
		})
	}
	if reportErr != nil || reportStatus != http.StatusOK {
		t.Fatalf("report: %d %v", reportStatus, reportErr)
	}
	passed := make([]int, rounds)
	for r, outs := range outcomes {
		for i, o := range outs {
			if o.err != nil {
				t.Fatalf("round %d racer %d: %v", r, i, o.err)
			}
			switch {
			case o.status == http.StatusOK:
				passed[r]++
			case o.status != http.StatusUnauthorized && o.status != http.StatusForbidden:
				// 401: a replayed code (a racer of the same step, or a
				// sign-in whose commit met the report); 403: no camera.
				t.Fatalf("round %d racer %d: status %d", r, i, o.status)
			}
		}
	}
	for r, n := range passed {
		switch {
		case r < reportRound && n != 1:
			t.Fatalf("round %d (before the report): %d sign-ins passed, want 1: %v", r, n, passed)
		case r == reportRound && n > 1:
			t.Fatalf("round %d (the report's): %d sign-ins passed: %v", r, n, passed)
		case r > reportRound && n != 0:
			t.Fatalf("round %d (after the report returned): %d sign-ins passed with the lost camera's codes", r, n)
		}
	}
	// The report's round: a sign-in that passed committed before the
	// report (its audit row has a lower ID: SQLite writes in commit order;
	// on PostgreSQL the report takes its ID only after the replay record's
	// row, which a sign-in holds until it commits).
	rows, err := srv.Store.AuditPage(context.Background(), model.AuditQuery{AuditFilter: model.AuditFilter{Subject: "erin", Action: model.AuditSignIn, Result: "ok"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	report, err := srv.Store.AuditPage(context.Background(), model.AuditQuery{AuditFilter: model.AuditFilter{Subject: "BC4-R", Action: "camera.report-lost"}, Limit: 1})
	if err != nil || len(report) != 1 {
		t.Fatalf("report row: %v %v", report, err)
	}
	after := 0
	for _, e := range rows {
		if e.ID > report[0].ID {
			after++
		}
	}
	if len(rows) != reportRound+passed[reportRound] || after != 0 {
		t.Fatalf("%d sign-ins audited ok (want %d), %d after the report", len(rows), reportRound+passed[reportRound], after)
	}
	t.Logf("passed per round %v (report in round %d)", passed, reportRound)
}

// TestReportLostOnAFullDisk: with the database's disk full, a report
// fails whole with 503 "storage unavailable: disk full" (the camera keeps
// its officer and seed: nothing half done); once space is freed the same
// report goes through.
func TestReportLostOnAFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=6m,mode=0700"); err != nil {
		t.Skipf("mounting a small tmpfs needs root (CI runs as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	srv := testenv.Server(t, dir, quickSignIn)
	testenv.User(t, srv, "erin", "pw-erin-long")
	testenv.ProvisionedCamera(t, srv, "BC4-F", device.Body4, "erin")
	testenv.Camera(t, srv, "WF-X", device.Workforce)
	if status, err := post(srv, srv.AdminToken, "/api/v1/admin/cameras/WF-X/report-lost", provisioning.LostRequest{}, nil); err != nil || status != http.StatusOK {
		t.Fatalf("report WF-X: %d %v", status, err)
	}
	filler := filepath.Join(dir, "filler")
	fd, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 64<<10); ; {
		if _, err := fd.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	fd.Close()
	// SQLite reuses the WAL space it has: writes may fit for a while. A
	// camera reported lost already takes reports that write an audit row
	// each, until the disk tells.
	var status int
	var msg string
	for i := 0; ; i++ {
		if status, err = post(srv, srv.AdminToken, "/api/v1/admin/cameras/WF-X/report-lost", provisioning.LostRequest{}, &msg); err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK {
			break
		}
		if i == 1000 {
			t.Fatal("1000 reports on a full disk all succeeded")
		}
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(msg, "storage unavailable: disk full") {
		t.Fatalf("a repeated report on a full disk: %d %s", status, msg)
	}
	status, err = post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-F/report-lost", provisioning.LostRequest{Reason: "disk test"}, &msg)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(msg, "storage unavailable: disk full") {
		t.Fatalf("report on a full disk: %d %s", status, msg)
	}
	c, err := srv.Store.Camera(context.Background(), "BC4-F")
	if err != nil || c.Lost != nil || c.AssignedUser != "erin" || c.State != model.StateProvisioned {
		t.Fatalf("camera after the refused report: %+v %v", c, err)
	}
	if _, err := srv.Store.ActiveSeed(context.Background(), "BC4-F"); err != nil {
		t.Fatalf("the refused report took the seed: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if status, err = post(srv, srv.AdminToken, "/api/v1/admin/cameras/BC4-F/report-lost", provisioning.LostRequest{Reason: "disk test"}, &msg); err != nil || status != http.StatusOK {
		t.Fatalf("report once space was freed: %d %s %v", status, msg, err)
	}
	if c, _ := srv.Store.Camera(context.Background(), "BC4-F"); c.Lost == nil || c.AssignedUser != "" {
		t.Fatalf("camera after the report: %+v", c)
	}
}

// TestBulkAssignmentOfALostCamera: the preview of a bulk assignment marks
// a row giving a lost camera as invalid, saying why, and the file applies
// nothing.
func TestBulkAssignmentOfALostCamera(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, _ := masterkey.New(make([]byte, 32))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "f.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob"} {
		if err := st.AddUser(ctx, model.User{Username: u, Email: u + "@pd.example"}, "h"); err != nil {
			t.Fatal(err)
		}
	}
	for _, sn := range []string{"C-1", "C-L"} {
		if err := st.AddCamera(ctx, sn, device.Body4, "pk"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ReportLost(ctx, "C-L", model.LostReport{Actor: "fran"}, []byte("c"), func(uint64) ([]byte, error) { return []byte("cmd"), nil }); err != nil {
		t.Fatal(err)
	}
	fleet := provisioning.NewFleet(st, nopStarter{})
	rows := []provisioning.BulkRow{{Line: 1, Serial: "C-1", Username: "alice"}, {Line: 2, Serial: "C-L", Username: "bob"}}
	got, err := fleet.CheckAssignments(ctx, rows, true)
	if err != nil || got[0].Status != provisioning.BulkAssign || got[1].Status != provisioning.BulkInvalid ||
		!strings.Contains(got[1].Problem, "camera C-L is reported lost") {
		t.Fatalf("preview: %+v %v", got, err)
	}
	if _, err := fleet.ApplyAssignments(ctx, rows, true, "fran", "192.0.2.1"); !errors.Is(err, provisioning.ErrBulkHasErrors) {
		t.Fatalf("apply: %v", err)
	}
	if c, _ := st.Camera(ctx, "C-1"); c.AssignedUser != "" {
		t.Fatal("a file with a lost camera assigned C-1")
	}
}
