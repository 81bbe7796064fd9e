package testenv

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/camotp/camotp/internal/auditsyslog"
)

// SyslogReceiver is a syslog receiver on a loopback port built on
// go-syslog's octet-counting RFC 5424 parser: it reads each connection to
// its end, keeps every message, and then closes the connection, as rsyslog
// does. Stop and Start take it down and up again on the same port; Hold
// makes it stop reading (a slow receiver) until Release.
type SyslogReceiver struct {
	Addr string
	tls  *tls.Config

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	cut   map[net.Conn]bool // closed by Stop: their last message may be cut
	msgs  []*rfc5424.SyslogMessage
	errs  []error
	gate  chan struct{} // closed: reading; open: held
	wg    sync.WaitGroup
}

// StartSyslogReceiver listens on a free loopback port, with TLS when
// tlsCfg is not nil. It stops at cleanup.
func StartSyslogReceiver(tb testing.TB, tlsCfg *tls.Config) *SyslogReceiver {
	tb.Helper()
	r := &SyslogReceiver{Addr: "127.0.0.1:0", tls: tlsCfg, conns: map[net.Conn]struct{}{}, cut: map[net.Conn]bool{}, gate: make(chan struct{})}
	close(r.gate)
	if err := r.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}

// URL is the receiver's target URL (tcp:// or tls://).
func (r *SyslogReceiver) URL() string {
	if r.tls != nil {
		return "tls://" + r.Addr
	}
	return "tcp://" + r.Addr
}

// Start listens again (on the port of the first start).
func (r *SyslogReceiver) Start() error {
	var ln net.Listener
	var err error
	if r.tls != nil {
		ln, err = tls.Listen("tcp", r.Addr, r.tls)
	} else {
		ln, err = net.Listen("tcp", r.Addr)
	}
	if err != nil {
		return fmt.Errorf("syslog receiver: %w", err)
	}
	r.mu.Lock()
	r.ln, r.Addr = ln, ln.Addr().String()
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(c)
			}()
		}
	}()
	return nil
}

// heldReader waits for the receiver's gate before each read, and counts
// the bytes read.
type heldReader struct {
	r *SyslogReceiver
	c net.Conn
	n int64
}

func (h *heldReader) Read(p []byte) (int, error) {
	h.r.mu.Lock()
	gate := h.r.gate
	h.r.mu.Unlock()
	<-gate
	n, err := h.c.Read(p)
	h.n += int64(n)
	return n, err
}

func (r *SyslogReceiver) serve(c net.Conn) {
	cr := &heldReader{r: r, c: c}
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	// A connection that sent nothing (a refused TLS handshake) ends with
	// the parser's "expecting a MSGLEN", and one Stop cut may end within
	// a message: neither is an error of the sender's stream.
	var errs []error
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if cr.n > 0 && !r.cut[c] {
			r.errs = append(r.errs, errs...)
		}
		delete(r.cut, c)
	}()
	p := octetcounting.NewParser(syslog.WithMaxMessageLength(64<<10), syslog.WithListener(func(res *syslog.Result) {
		if res.Error != nil {
			errs = append(errs, res.Error)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if m, ok := res.Message.(*rfc5424.SyslogMessage); ok {
			r.msgs = append(r.msgs, m)
		} else {
			r.errs = append(r.errs, fmt.Errorf("not an RFC 5424 message: %T", res.Message))
		}
	}))
	p.Parse(bufio.NewReader(cr))
}

// Stop closes the listener and every connection, read or not (the kernel
// resets a connection closed with unread data).
func (r *SyslogReceiver) Stop() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
	}
	for c := range r.conns {
		r.cut[c] = true
		c.Close()
	}
	held := r.gate
	r.mu.Unlock()
	select {
	case <-held:
	default: // unblock held readers so that they see their closed conns
		r.Release()
	}
	r.wg.Wait()
}

// Hold stops reading from the connections (their bytes wait in the
// kernel's buffers, then the senders' writes block).
func (r *SyslogReceiver) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
		r.gate = make(chan struct{})
	default:
	}
}

// Release reads again after Hold.
func (r *SyslogReceiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
	default:
		close(r.gate)
	}
}

// Messages are the messages received so far, and the parse errors.
func (r *SyslogReceiver) Messages() ([]*rfc5424.SyslogMessage, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rfc5424.SyslogMessage(nil), r.msgs...), append([]error(nil), r.errs...)
}

// Rows are the audit rows received so far (duplicates included), and the
// parse errors (of the framing, the message, or the audit element).
func (r *SyslogReceiver) Rows() ([]auditsyslog.Row, []error) {
	msgs, errs := r.Messages()
	return parseRows(msgs, errs)
}

func parseRows(msgs []*rfc5424.SyslogMessage, errs []error) ([]auditsyslog.Row, []error) {
	rows := make([]auditsyslog.Row, 0, len(msgs))
	for _, m := range msgs {
		row, err := auditsyslog.ParseRow(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rows = append(rows, row)
	}
	return rows, errs
}

// Rsyslog is Debian's rsyslogd run by the test as a child process with a
// configuration of its own: imtcp on a loopback port, every message's raw
// form written, one a line, to a file in the test's directory. Direct
// queues, so a message is in the file (in rsyslog's buffer, flushed at
// stop) before rsyslog reads the next.
type Rsyslog struct {
	Addr, File string
	bin        string
	dir, conf  string
	// tls, when set, serves TLS only (gtls driver) and asks for a client
	// certificate valid under the CA.
	tls    *RsyslogTLS
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	log    *SyncBuffer
}

// NeedRsyslog returns rsyslogd's path; without it the test is skipped,
// or fails under CI=true (.ci/run installs Debian's rsyslog).
func NeedRsyslog(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatal("rsyslogd not installed, but CI=true: .ci/run installs Debian's rsyslog")
	}
	tb.Skip("rsyslogd not installed (Debian package rsyslog); CI installs it")
	return ""
}

// RsyslogTLS are the PEM files of a TLS rsyslogd: the CA that signs its
// certificate and its clients', its certificate and key.
type RsyslogTLS struct {
	CAFile, CertFile, KeyFile string
}

// StartRsyslog starts rsyslogd on a free loopback port; it is stopped at
// cleanup.
func StartRsyslog(tb testing.TB) *Rsyslog {
	tb.Helper()
	return startRsyslog(tb, nil)
}

// StartRsyslogTLS starts rsyslogd serving TLS with the files of t (its
// gtls driver, Debian's rsyslog-gnutls: skipped without it, failing under
// CI=true), requiring a client certificate valid under t.CAFile.
func StartRsyslogTLS(tb testing.TB, t RsyslogTLS) *Rsyslog {
	tb.Helper()
	NeedRsyslog(tb)
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatal("rsyslog's gtls driver not installed, but CI=true: .ci/run installs Debian's rsyslog-gnutls")
		}
		tb.Skip("rsyslog's gtls driver not installed (Debian package rsyslog-gnutls); CI installs it")
	}
	return startRsyslog(tb, &t)
}

func startRsyslog(tb testing.TB, t *RsyslogTLS) *Rsyslog {
	tb.Helper()
	r := &Rsyslog{bin: NeedRsyslog(tb), dir: tb.TempDir(), tls: t}
	r.File = filepath.Join(r.dir, "received.log")
	var last string
	for range 5 {
		port, err := freeTCPPort()
		if err != nil {
			tb.Fatal(err)
		}
		r.port = port
		if err := r.Start(); err == nil {
			tb.Cleanup(func() {
				r.Stop()
				if tb.Failed() {
					tb.Logf("rsyslogd log:\n%s", r.log.String())
				}
			})
			return r
		} else {
			last = err.Error()
		}
	}
	tb.Fatalf("rsyslogd did not start: %s", last)
	return nil
}

// Start starts rsyslogd (again) on its port, appending to File.
func (r *Rsyslog) Start() error {
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.port)
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	global, imtcp := "", `module(load="imtcp")`
	if r.tls != nil {
		global = fmt.Sprintf(` defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q`,
			r.tls.CAFile, r.tls.CertFile, r.tls.KeyFile)
		imtcp = `module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")`
	}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"`+global+`)
main_queue(queue.type="Direct")
`+imtcp+`
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="audit" queue.type="Direct") {
  action(type="omfile" file=%q template="raw" fileCreateMode="0600")
}
input(type="imtcp" port="%d" address="127.0.0.1" ruleset="audit")
`, r.dir, r.File, r.port)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		return err
	}
	r.log = &SyncBuffer{}
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start rsyslogd: %w", err)
	}
	r.exited = make(chan struct{})
	go func() { r.cmd.Wait(); close(r.exited) }()
	if !waitListening(r.Addr, r.exited, 15*time.Second) {
		r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("rsyslogd not listening on %s:\n%s", r.Addr, r.log.String())
	}
	return nil
}

// Stop stops rsyslogd with SIGTERM (it flushes its file) and waits for it
// to exit; a second Stop does nothing.
func (r *Rsyslog) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// Rows are the audit rows in File so far (duplicates included), and what
// did not parse.
func (r *Rsyslog) Rows() ([]auditsyslog.Row, []error) {
	data, err := os.ReadFile(r.File)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var msgs []*rfc5424.SyslogMessage
	var errs []error
	p := rfc5424.NewParser()
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		m, err := p.Parse([]byte(line))
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %q", err, line))
			continue
		}
		msgs = append(msgs, m.(*rfc5424.SyslogMessage))
	}
	return parseRows(msgs, errs)
}
