package auditsyslog_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/auditsyslog"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
)

// memLog is an audit log of chains in memory, for the forwarder's own
// tests (the server's tests tail the real stores).
type memLog struct {
	mu     sync.Mutex
	chains [][]model.AuditEntry
}

func newMemLog(chains int) *memLog { return &memLog{chains: make([][]model.AuditEntry, chains)} }

func (m *memLog) AuditChains() int { return len(m.chains) }

func (m *memLog) AuditAfter(ctx context.Context, chain int, after int64, limit int) ([]model.AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.chains[chain]
	if after >= int64(len(rows)) {
		return nil, ctx.Err()
	}
	rows = rows[after:]
	return append([]model.AuditEntry(nil), rows[:min(limit, len(rows))]...), ctx.Err()
}

// add appends a row to chain and returns its seq.
func (m *memLog) add(chain int, actor, detail string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := int64(len(m.chains[chain]) + 1)
	m.chains[chain] = append(m.chains[chain], model.AuditEntry{At: time.Now().UTC(), Actor: actor, Action: "login.mfa",
		Subject: "officer-" + actor, Result: "ok", SourceIP: "192.0.2.9", Detail: detail, Chain: chain, Seq: seq,
		MAC: []byte(fmt.Sprintf("mac-%d-%d-%s-%s", chain, seq, actor, detail))})
	return seq
}

func (m *memLog) heads() map[int]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := map[int]int64{}
	for c, rows := range m.chains {
		if len(rows) > 0 {
			h[c] = int64(len(rows))
		}
	}
	return h
}

func (m *memLog) row(chain int, seq int64) model.AuditEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chains[chain][seq-1]
}

// logCounter is a slog handler counting records by level and message
// prefix, so tests can hold the forwarder to one WARN per outage.
type logCounter struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) count(level slog.Level, prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds; it fails the test after a minute
// (a bound for a stuck forwarder, not a timing assumption).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs a forwarder of src to target with quick polls and backoff;
// it stops at cleanup (or by the returned stop, which waits for Run).
func start(t *testing.T, src auditsyslog.Source, cfg auditsyslog.Config) (*auditsyslog.Forwarder, func()) {
	t.Helper()
	cfg.Poll = max(cfg.Poll, 10*time.Millisecond)
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second // a loaded CI machine, not a receiver that never closes
	}
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	if cfg.CursorPath == "" {
		cfg.CursorPath = filepath.Join(t.TempDir(), auditsyslog.CursorFile)
	}
	if cfg.Log == nil {
		cfg.Log = testenv.Log(t)
	}
	f, err := auditsyslog.New(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return f, stop
}

// caughtUp: every row of src is confirmed.
func caughtUp(f *auditsyslog.Forwarder, src *memLog) bool {
	conf := f.Confirmed()
	for c, h := range src.heads() {
		if conf[c] != h {
			return false
		}
	}
	return true
}

// checkDelivered: every row of src arrived at least once, as it is in
// src, and the first arrivals of each chain are in chain order (1, 2, 3…;
// resends after an outage may repeat rows).
func checkDelivered(t *testing.T, src *memLog, rows []auditsyslog.Row, errs []error) {
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
		want := src.row(r.Chain, r.Seq)
		want.At = want.At.Truncate(time.Microsecond)
		if got := r.AuditEntry; got.Actor != want.Actor || got.Detail != want.Detail || !got.At.Equal(want.At) || string(got.MAC) != string(want.MAC) {
			t.Fatalf("row %d/%d arrived as %+v, want %+v", r.Chain, r.Seq, got, want)
		}
	}
	for c, h := range src.heads() {
		if next[c] != h {
			t.Fatalf("chain %d: rows up to %d arrived, the log has %d", c, next[c], h)
		}
	}
}

// writers adds rows to src from n goroutines released together, each
// adding per rows; it returns a channel closed when they are done.
func writers(src *memLog, n, per int) <-chan struct{} {
	startGate, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			<-startGate
			for i := range per {
				src.add((w+i)%src.AuditChains(), fmt.Sprintf("w%d", w), fmt.Sprintf(`row %d of writer %d "quoted" [x]`, i, w))
			}
		})
	}
	close(startGate)
	go func() { wg.Wait(); close(done) }()
	return done
}

// Rows written by 8 goroutines at once into 4 chains all reach the Go
// receiver, in chain order, over several checkpointed connections; the
// cursor file holds the last positions.
func TestForwardChainOrder(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	src := newMemLog(4)
	cursor := filepath.Join(t.TempDir(), auditsyslog.CursorFile)
	f, _ := start(t, src, auditsyslog.Config{Target: rcv.URL(), CursorPath: cursor, SessionRows: 300, Batch: 100})
	<-writers(src, 8, 250)
	waitFor(t, "every row confirmed", func() bool { return caughtUp(f, src) })
	rows, errs := rcv.Rows()
	checkDelivered(t, src, rows, errs)
	if len(rows) != 2000 {
		t.Fatalf("%d rows received, want 2000 (no outage, so no resends)", len(rows))
	}
	c, err := auditsyslog.LoadCursor(cursor)
	if err != nil || c.Target != rcv.URL() || len(c.Seq) != 4 || c.Seq[0]+c.Seq[1]+c.Seq[2]+c.Seq[3] != 2000 {
		t.Fatalf("cursor file: %+v %v", c, err)
	}
	if st := f.Stats(); st.Sessions < 2 || st.Forwarded != 2000 || st.Failures != 0 || !st.Up {
		t.Fatalf("stats: %+v", st)
	}
	if rows, behind, err := f.Lag(t.Context()); err != nil || rows != 0 || behind != 0 {
		t.Fatalf("lag when caught up: %d rows, %s, %v", rows, behind, err)
	}
}

// receiver is what the restart test stops and starts.
type receiver interface {
	Stop()
	Start() error
	Rows() ([]auditsyslog.Row, []error)
}

// testRestart stops the receiver while rows are being written in
// parallel and sent, keeps writing during the outage, starts it again:
// every row arrives at least once, in chain order; the outage logged one
// WARN however many retries failed, and the lag showed the rows waiting.
func testRestart(t *testing.T, rcv receiver, url string) {
	src := newMemLog(3)
	logs := &logCounter{}
	f, _ := start(t, src, auditsyslog.Config{Target: url, SessionRows: 200, Batch: 50, Log: slog.New(logs)})
	var written atomic.Int64
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopWriting:
					return
				default:
				}
				src.add((w+i)%3, fmt.Sprintf("w%d", w), fmt.Sprintf("row %d", i))
				written.Add(1)
				if i%50 == 49 {
					time.Sleep(time.Millisecond) // a stream, not one burst
				}
			}
		})
	}
	waitFor(t, "rows received before the stop", func() bool { rows, _ := rcv.Rows(); return len(rows) >= 300 })
	rcv.Stop()
	before := written.Load()
	waitFor(t, "three failed attempts while the receiver is down", func() bool { return f.Stats().Failures >= 3 })
	waitFor(t, "rows written during the outage", func() bool { return written.Load() > before+300 })
	if n, _, err := f.Lag(t.Context()); err != nil || n == 0 {
		t.Fatalf("lag during the outage: %d rows, %v", n, err)
	}
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rows received after the restart", func() bool { return f.Stats().Sessions > 0 && f.Stats().Up })
	close(stopWriting)
	wg.Wait()
	waitFor(t, "every row confirmed", func() bool { return caughtUp(f, src) })
	rows, errs := rcv.Rows()
	checkDelivered(t, src, rows, errs)
	st := f.Stats()
	t.Logf("%d rows written, %d received (%d resent), %d connections failed, %d checkpointed", written.Load(), len(rows),
		len(rows)-int(written.Load()), st.Failures, st.Sessions)
	if w := logs.count(slog.LevelWarn, "audit syslog: receiver unreachable"); w != 1 {
		t.Fatalf("%d WARNs for one outage of %d failed attempts", w, st.Failures)
	}
	if logs.count(slog.LevelInfo, "audit syslog: receiver back") != 1 {
		t.Fatal("no INFO when the receiver came back")
	}
}

func TestForwardGoReceiverRestart(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	testRestart(t, rcv, rcv.URL())
}

// The same against Debian's rsyslogd, stopped with SIGTERM mid-stream.
func TestForwardRsyslogRestart(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRsyslog(t)
	testRestart(t, rs, "tcp://"+rs.Addr)
}

// A receiver that reads everything but never closes its side after the
// end of the stream never confirms: TCP writes that succeeded into the
// kernel's buffers are not a delivery. The rows stay unconfirmed and are
// sent again.
func TestForwardNoConfirmWithoutClose(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	hold := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(hold); conns.Wait() })
	var read atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c) // reads to EOF, then holds the connection
				read.Add(n)
				<-hold
			})
		}
	}()
	src := newMemLog(1)
	for i := range 10 {
		src.add(0, "a", fmt.Sprint(i))
	}
	f, _ := start(t, src, auditsyslog.Config{Target: "tcp://" + ln.Addr().String(), DrainTimeout: 100 * time.Millisecond})
	waitFor(t, "two drains that timed out", func() bool { return f.Stats().Failures >= 2 })
	if st := f.Stats(); st.Sent < 20 || st.Forwarded != 0 || len(f.Confirmed()) != 0 || read.Load() == 0 {
		t.Fatalf("stats %+v, confirmed %v, %d bytes read", st, f.Confirmed(), read.Load())
	}
}

// A stopped forwarder's successor resumes from the cursor file: it sends
// only the rows after the confirmed positions. A cursor of another target
// is set aside: the new receiver gets the whole log.
func TestForwardResumesFromCursor(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	src := newMemLog(2)
	cursor := filepath.Join(t.TempDir(), auditsyslog.CursorFile)
	for i := range 100 {
		src.add(i%2, "first", fmt.Sprint(i))
	}
	f1, stop1 := start(t, src, auditsyslog.Config{Target: rcv.URL(), CursorPath: cursor})
	waitFor(t, "first forwarder caught up", func() bool { return caughtUp(f1, src) })
	stop1()
	first, _ := rcv.Rows()
	if len(first) != 100 {
		t.Fatalf("%d rows before the restart", len(first))
	}
	for i := range 60 {
		src.add(i%2, "second", fmt.Sprint(i))
	}
	f2, stop2 := start(t, src, auditsyslog.Config{Target: rcv.URL(), CursorPath: cursor})
	waitFor(t, "second forwarder caught up", func() bool { return caughtUp(f2, src) })
	stop2()
	rows, errs := rcv.Rows()
	checkDelivered(t, src, rows, errs)
	for _, r := range rows[100:] {
		if r.Actor != "second" {
			t.Fatalf("after the restart row %d/%d of before was sent again", r.Chain, r.Seq)
		}
	}
	if len(rows) != 160 {
		t.Fatalf("%d rows, want 160", len(rows))
	}
	other := testenv.StartSyslogReceiver(t, nil)
	f3, _ := start(t, src, auditsyslog.Config{Target: other.URL(), CursorPath: cursor})
	waitFor(t, "the new target's forwarder caught up", func() bool { return caughtUp(f3, src) })
	rows, errs = other.Rows()
	checkDelivered(t, src, rows, errs)
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate.
type testPKI struct {
	pool           *x509.CertPool
	caDER          []byte
	server, client tls.Certificate
}

func newPKI(t *testing.T, name string) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := testPKI{pool: x509.NewCertPool(), caDER: caDER}
	p.pool.AddCert(ca)
	p.server = leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.client = leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

// Over TLS with a test CA and a client certificate the receiver requires:
// the rows arrive. Without the client certificate, or trusting another
// CA, nothing is confirmed.
func TestForwardTLS(t *testing.T) {
	t.Parallel()
	pki, other := newPKI(t, "siem"), newPKI(t, "impostor")
	rcv := testenv.StartSyslogReceiver(t, &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	src := newMemLog(2)
	for i := range 50 {
		src.add(i%2, "tls", fmt.Sprint(i))
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", &tls.Config{RootCAs: pki.pool}},
		{"another CA", &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{pki.client}}},
	} {
		f, stop := start(t, src, auditsyslog.Config{Target: rcv.URL(), TLS: tc.cfg})
		waitFor(t, tc.name+": failed attempts", func() bool { return f.Stats().Failures >= 2 })
		stop()
		if st := f.Stats(); st.Forwarded != 0 || len(f.Confirmed()) != 0 {
			t.Fatalf("%s: %+v confirmed %v", tc.name, st, f.Confirmed())
		}
	}
	if rows, _ := rcv.Rows(); len(rows) != 0 {
		t.Fatalf("%d rows reached the receiver over refused TLS", len(rows))
	}
	f, _ := start(t, src, auditsyslog.Config{Target: rcv.URL(), TLS: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}})
	waitFor(t, "rows confirmed over TLS", func() bool { return caughtUp(f, src) })
	rows, errs := rcv.Rows()
	checkDelivered(t, src, rows, errs)
}

// A receiver that stops reading holds the forwarder (its writes block)
// but never the log: rows keep being added, and all arrive once it reads
// again.
func TestForwardSlowReceiver(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	src := newMemLog(1)
	f, _ := start(t, src, auditsyslog.Config{Target: rcv.URL(), SessionRows: 100_000})
	rcv.Hold()
	for i := range 5000 {
		src.add(0, "flood", strings.Repeat("x", 200)+fmt.Sprint(i))
	}
	waitFor(t, "the forwarder to start sending", func() bool { return f.Stats().Sent > 0 })
	more := writers(src, 4, 1000) // while the forwarder is blocked
	<-more
	if n := src.heads()[0]; n != 9000 {
		t.Fatalf("%d rows in the log", n)
	}
	rcv.Release()
	waitFor(t, "every row confirmed", func() bool { return caughtUp(f, src) })
	rows, errs := rcv.Rows()
	checkDelivered(t, src, rows, errs)
}

// benchForward forwards b.N rows of 2 chains to url and reports rows/s
// from the first connection to the last confirmation.
func benchForward(b *testing.B, url string) {
	src := newMemLog(2)
	for i := range b.N {
		src.add(i%2, "bench", fmt.Sprintf("row %d with a detail about as long as the real ones, BC4-%06d", i, i))
	}
	f, err := auditsyslog.New(src, auditsyslog.Config{Target: url, CursorPath: filepath.Join(b.TempDir(), auditsyslog.CursorFile),
		Log: slog.New(slog.DiscardHandler), Poll: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { defer close(done); f.Run(ctx) }()
	for !caughtUp(f, src) {
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	b.StopTimer()
	cancel()
	<-done
}

func BenchmarkForwardGoReceiver(b *testing.B) {
	rcv := testenv.StartSyslogReceiver(b, nil)
	benchForward(b, rcv.URL())
}

func BenchmarkForwardRsyslog(b *testing.B) {
	rs := testenv.StartRsyslog(b)
	benchForward(b, "tcp://"+rs.Addr)
}

// A forwarder blocked writing to a receiver that stopped reading stops
// promptly when asked (its writes are cut a short drain after), not after
// its minute-long write timeout.
func TestForwardStopWhileHeld(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	src := newMemLog(1)
	for i := range 40_000 {
		src.add(0, "flood", strings.Repeat("x", 200)+fmt.Sprint(i))
	}
	rcv.Hold()
	f, stop := start(t, src, auditsyslog.Config{Target: rcv.URL(), SessionRows: 100_000, WriteTimeout: time.Hour})
	waitFor(t, "the forwarder blocked in a write", func() bool { return f.Stats().Sent > 0 })
	began := time.Now()
	stop()
	if d := time.Since(began); d > 30*time.Second {
		t.Fatalf("stopping took %s", d)
	}
	if len(f.Confirmed()) != 0 {
		t.Fatalf("rows confirmed by a receiver that read nothing: %v", f.Confirmed())
	}
}

// pemFiles writes the CA and the server certificate and key of p as PEM
// files, for rsyslogd.
func pemFiles(t *testing.T, p testPKI) testenv.RsyslogTLS {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := x509.MarshalPKCS8PrivateKey(p.server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.RsyslogTLS{CAFile: write("ca.pem", "CERTIFICATE", p.caDER), CertFile: write("server.pem", "CERTIFICATE", p.server.Certificate[0]),
		KeyFile: write("server.key", "PRIVATE KEY", key)}
}

// Debian's rsyslogd with its gtls driver, asking for a client certificate
// under the test CA: the rows arrive and each connection is confirmed by
// rsyslogd closing after camotp's close_notify; without the client
// certificate nothing is confirmed.
func TestForwardRsyslogTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t, "siem")
	rs := testenv.StartRsyslogTLS(t, pemFiles(t, pki))
	src := newMemLog(2)
	for i := range 300 {
		src.add(i%2, "tls", fmt.Sprintf(`row %d "q" ]`, i))
	}
	f, stop := start(t, src, auditsyslog.Config{Target: "tls://" + rs.Addr, TLS: &tls.Config{RootCAs: pki.pool}, SessionRows: 100})
	waitFor(t, "failed attempts without a client certificate", func() bool { return f.Stats().Failures >= 2 })
	stop()
	if len(f.Confirmed()) != 0 {
		t.Fatalf("confirmed without a client certificate: %v", f.Confirmed())
	}
	f, _ = start(t, src, auditsyslog.Config{Target: "tls://" + rs.Addr, SessionRows: 100, Batch: 50,
		TLS: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}})
	waitFor(t, "rows confirmed by rsyslogd over TLS", func() bool { return caughtUp(f, src) })
	rows, errs := rs.Rows()
	checkDelivered(t, src, rows, errs)
	if st := f.Stats(); st.Sessions < 3 {
		t.Fatalf("%d checkpointed connections for 300 rows at 100 a connection (50 a chain a read)", st.Sessions)
	}
}

// truncate cuts chain back to its first n rows, as someone with write
// access to the database who also winds the chain's head back would.
func (m *memLog) truncate(chain, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chains[chain] = m.chains[chain][:n]
}

// TestRewoundChainSentAgain: someone cuts the last 50 rows of a chain
// (and its head) after the receiver got them, and 50 new rows take their
// places. The row at the cursor no longer has the MAC it was sent with:
// the forwarder says so at ERROR, counts it, and sends the chain again
// from its start, so the new rows reach the receiver beside the old ones.
func TestRewoundChainSentAgain(t *testing.T) {
	rcv := testenv.StartSyslogReceiver(t, nil)
	src := newMemLog(2)
	for i := range 100 {
		src.add(0, "before", fmt.Sprint(i))
		src.add(1, "other", fmt.Sprint(i))
	}
	f, _ := start(t, src, auditsyslog.Config{Target: rcv.URL()})
	waitFor(t, "caught up", func() bool { return caughtUp(f, src) })
	src.truncate(0, 50)
	for i := range 50 {
		src.add(0, "after-rewind", fmt.Sprint(i))
	}
	waitFor(t, "the rows written after the rewind", func() bool {
		rows, _ := rcv.Rows()
		n := 0
		for _, r := range rows {
			if r.Actor == "after-rewind" {
				n++
			}
		}
		return n == 50 && caughtUp(f, src)
	})
	if st := f.Stats(); st.Rewinds != 1 {
		t.Fatalf("%d rewinds counted, want 1 (chain 0 only)", st.Rewinds)
	}
	if lag, _, err := f.Lag(context.Background()); err != nil || lag != 0 {
		t.Fatalf("lag %d %v after catching up again", lag, err)
	}
}

// hookLog runs hook once, the first time chain 0 is read after position at.
type hookLog struct {
	*memLog
	at   int64
	once sync.Once
	hook func()
}

func (h *hookLog) AuditAfter(ctx context.Context, chain int, after int64, limit int) ([]model.AuditEntry, error) {
	if chain == 0 && after == h.at {
		h.once.Do(h.hook)
	}
	return h.memLog.AuditAfter(ctx, chain, after, limit)
}

// TestRewoundWhileSending: the chain is cut back from 120 rows to 90 and
// 40 new rows written while a connection is open (after it sent rows up
// to 120, before it reads on). The connection is not confirmed, and the
// rows written over the cut reach the receiver.
func TestRewoundWhileSending(t *testing.T) {
	rcv := testenv.StartSyslogReceiver(t, nil)
	m := newMemLog(1)
	for i := range 120 {
		m.add(0, "before", fmt.Sprint(i))
	}
	src := &hookLog{memLog: m, at: 120, hook: func() {
		m.truncate(0, 90)
		for i := range 40 {
			m.add(0, "after-rewind", fmt.Sprint(i))
		}
	}}
	f, _ := start(t, src, auditsyslog.Config{Target: rcv.URL()})
	waitFor(t, "caught up", func() bool { return caughtUp(f, m) })
	// a few more sessions
	for i := range 5 {
		m.add(0, "later", fmt.Sprint(i))
	}
	waitFor(t, "caught up again", func() bool { return caughtUp(f, m) })
	rows, _ := rcv.Rows()
	got := map[int64]bool{}
	for _, r := range rows {
		if r.Actor == "after-rewind" {
			got[r.Seq] = true
		}
	}
	missing := 0
	for s := int64(91); s <= 130; s++ {
		if !got[s] {
			missing++
		}
	}
	if missing > 0 || f.Stats().Rewinds == 0 {
		t.Fatalf("%d of the 40 rows written over the cut never reached the receiver; %d rewinds counted", missing, f.Stats().Rewinds)
	}
}
