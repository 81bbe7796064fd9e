package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/auditsyslog"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
)

// forwardTo makes a server forward its audit log to url, polling often.
func forwardTo(url string) func(*server.Config) {
	return func(c *server.Config) {
		c.AuditSyslog = &auditsyslog.Config{Target: url, Poll: 20 * time.Millisecond, SessionRows: 500, DrainTimeout: 30 * time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
	}
}

// waitUntil polls cond until it holds, failing after a minute (a bound for
// a stuck forwarder, not a timing assumption).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storeLog reads every row of every chain of st.
func storeLog(t *testing.T, st storage.Store) map[int][]model.AuditEntry {
	t.Helper()
	out := map[int][]model.AuditEntry{}
	for c := range st.AuditChains() {
		var after int64
		for {
			rows, err := st.AuditAfter(context.Background(), c, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				break
			}
			out[c] = append(out[c], rows...)
			after = rows[len(rows)-1].Seq
		}
	}
	return out
}

// caughtUp: the forwarder confirmed every row of the store.
func caughtUp(t *testing.T, srv *server.Server) bool {
	conf := srv.AuditSyslog.Confirmed()
	for c, rows := range storeLog(t, srv.Store) {
		if conf[c] != int64(len(rows)) {
			return false
		}
	}
	return true
}

// checkReceived: every row of the store arrived at least once, as the
// store holds it (MAC included), and the first arrivals of each chain are
// in chain order.
func checkReceived(t *testing.T, log map[int][]model.AuditEntry, rows []auditsyslog.Row, errs []error) {
	t.Helper()
	if len(errs) > 0 {
		t.Fatalf("receiver errors: %v", errs[:min(len(errs), 5)])
	}
	next := map[int]int64{}
	for _, r := range rows {
		if r.Seq > next[r.Chain]+1 {
			t.Fatalf("chain %d: row %d arrived before row %d", r.Chain, r.Seq, next[r.Chain]+1)
		}
		if r.Seq == next[r.Chain]+1 {
			next[r.Chain] = r.Seq
		}
		want := log[r.Chain][r.Seq-1]
		got := r.AuditEntry
		if got.Actor != want.Actor || got.Action != want.Action || got.Subject != want.Subject || got.Result != want.Result ||
			got.SourceIP != want.SourceIP || got.Detail != want.Detail || !got.At.Equal(want.At) || string(got.MAC) != string(want.MAC) {
			t.Fatalf("row %d/%d arrived as %+v, the store has %+v", r.Chain, r.Seq, got, want)
		}
	}
	total := 0
	for c, rs := range log {
		total += len(rs)
		if next[c] != int64(len(rs)) {
			t.Fatalf("chain %d: rows up to %d arrived, the store has %d", c, next[c], len(rs))
		}
	}
	t.Logf("%d rows in %d chains; %d messages received", total, len(log), len(rows))
}

// auditWriters writes audit rows into st from n goroutines released
// together until the returned stop (also run at cleanup, before the
// server closes), and counts them.
func auditWriters(t *testing.T, st storage.Store, n int) (*atomic.Int64, func()) {
	var written atomic.Int64
	stop := make(chan struct{})
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			<-gate
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := model.AuditEntry{Actor: fmt.Sprintf("writer-%d", w), Action: "camera.assign", Subject: fmt.Sprintf("BC4-%06d", i),
					Result: "ok", SourceIP: "192.0.2.1", Detail: fmt.Sprintf(`to "officer %d" [test]`, i)}
				if err := st.Audit(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	close(gate)
	var once sync.Once
	end := func() { once.Do(func() { close(stop); wg.Wait() }) }
	t.Cleanup(end)
	return &written, end
}

// testReceiverRestart: a server forwards to rcv while audit rows are
// written in parallel; the receiver is stopped mid-stream, rows keep
// being written, it starts again: every row of the store arrives, at
// least once, in chain order.
func testReceiverRestart(t *testing.T, rcv interface {
	Stop()
	Start() error
	Rows() ([]auditsyslog.Row, []error)
}, url string, mod func(*server.Config)) {
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		forwardTo(url)(c)
		if mod != nil {
			mod(c)
		}
	})
	written, stop := auditWriters(t, srv.Store, 4)
	waitUntil(t, "rows at the receiver before the stop", func() bool { rows, _ := rcv.Rows(); return len(rows) >= 200 })
	rcv.Stop()
	before := written.Load()
	waitUntil(t, "failed attempts while the receiver is down", func() bool { return srv.AuditSyslog.Stats().Failures >= 2 })
	waitUntil(t, "rows written while it is down", func() bool { return written.Load() >= before+200 })
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the receiver confirming again", func() bool { return srv.AuditSyslog.Stats().Up })
	stop()
	waitUntil(t, "every row confirmed", func() bool { return caughtUp(t, srv) })
	rows, errs := rcv.Rows()
	checkReceived(t, storeLog(t, srv.Store), rows, errs)
}

// Against Debian's rsyslogd stopped with SIGTERM mid-stream and started
// again, with the server's SQLite store.
func TestAuditSyslogRsyslogRestart(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRsyslog(t)
	testReceiverRestart(t, rs, "tcp://"+rs.Addr, nil)
}

// Against the Go receiver, with PostgreSQL's eight chains.
func TestAuditSyslogPostgresChains(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	rcv := testenv.StartSyslogReceiver(t, nil)
	testReceiverRestart(t, rcv, rcv.URL(), func(c *server.Config) { c.DB = url })
}

// A camotp restart resumes from the cursor file in the data directory
// (0600): rows confirmed before it are not sent again; rows written while
// camotp was down go out when it is back.
func TestAuditSyslogServerRestart(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	dir := t.TempDir()
	srv := testenv.Server(t, dir, forwardTo(rcv.URL()))
	for i := range 50 {
		srv.Store.Audit(t.Context(), model.AuditEntry{Actor: "before", Action: "user.add", Subject: fmt.Sprint(i), Result: "ok"})
	}
	waitUntil(t, "rows confirmed", func() bool { return caughtUp(t, srv) })
	srv.Close()
	first, _ := rcv.Rows()
	fi, err := os.Stat(filepath.Join(dir, auditsyslog.CursorFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cursor file: %v %v", fi, err)
	}
	// Rows written while camotp is down (another process on the file).
	srv2 := testenv.Server(t, dir, nil)
	for i := range 30 {
		srv2.Store.Audit(t.Context(), model.AuditEntry{Actor: "while down", Action: "user.add", Subject: fmt.Sprint(i), Result: "ok"})
	}
	srv2.Close()
	srv3 := testenv.Server(t, dir, forwardTo(rcv.URL()))
	for i := range 20 {
		srv3.Store.Audit(t.Context(), model.AuditEntry{Actor: "after", Action: "user.add", Subject: fmt.Sprint(i), Result: "ok"})
	}
	waitUntil(t, "rows confirmed after the restart", func() bool { return caughtUp(t, srv3) })
	rows, errs := rcv.Rows()
	checkReceived(t, storeLog(t, srv3.Store), rows, errs)
	for _, r := range rows[len(first):] {
		if r.Actor == "before" {
			t.Fatalf("row %d of before the restart sent again", r.Seq)
		}
	}
}

// A receiver that stops reading while a flood of audit rows is written
// holds only the forwarder: sign-ins go on (each writes its own audit
// rows), /metrics shows the rows waiting, and once the receiver reads
// again every row arrives and the lag is back to 0.
func TestAuditSyslogSlowReceiverKeepsSignIns(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	f := testenv.NewFleet(t, forwardTo(rcv.URL()))
	srv := f.Srv
	waitUntil(t, "the fleet's rows confirmed", func() bool { return caughtUp(t, srv) })
	rcv.Hold()
	written, stop := auditWriters(t, srv.Store, 4)
	waitUntil(t, "a flood of rows", func() bool { return written.Load() >= 10_000 })
	waitUntil(t, "the forwarder held by the receiver", func() bool {
		st := srv.AuditSyslog.Stats()
		return st.Sent > st.Forwarded
	})
	for range 3 {
		f.Clock.Add(31 * time.Second) // a fresh code each round
		tok := f.Pending(t, "alice")
		if code, body := f.Verify(t, tok, testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); code != 200 || body["sessionToken"] == nil {
			t.Fatalf("sign-in while the receiver is stalled: %d %v", code, body)
		}
	}
	stop()
	m := scrape(t, srv, "")
	if m["camotp_audit_syslog_lag_rows{}"] < 5000 || m["camotp_audit_syslog_lag_seconds{}"] <= 0 {
		t.Fatalf("lag while stalled: %v rows, %v s", m["camotp_audit_syslog_lag_rows{}"], m["camotp_audit_syslog_lag_seconds{}"])
	}
	rcv.Release()
	waitUntil(t, "every row confirmed", func() bool { return caughtUp(t, srv) })
	rows, errs := rcv.Rows()
	checkReceived(t, storeLog(t, srv.Store), rows, errs)
	m = scrape(t, srv, "")
	if m["camotp_audit_syslog_lag_rows{}"] != 0 || m["camotp_audit_syslog_up{}"] != 1 || m["camotp_audit_syslog_forwarded_rows_total{}"] < float64(written.Load()) {
		t.Fatalf("metrics after the receiver caught up: lag %v, up %v, forwarded %v (%d written)", m["camotp_audit_syslog_lag_rows{}"],
			m["camotp_audit_syslog_up{}"], m["camotp_audit_syslog_forwarded_rows_total{}"], written.Load())
	}
}
