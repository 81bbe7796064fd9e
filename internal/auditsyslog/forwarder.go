package auditsyslog

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// Source is the audit log the forwarder tails: its hash chains, and the
// committed rows of one chain after a position, ascending.
type Source interface {
	AuditChains() int
	AuditAfter(ctx context.Context, chain int, afterSeq int64, limit int) ([]model.AuditEntry, error)
}

// Target is where the rows go.
type Target struct {
	// TLS is true for tls://, false for tcp://.
	TLS bool
	// Addr is HOST:PORT.
	Addr string
}

// String is the target's URL.
func (t Target) String() string {
	if t.TLS {
		return "tls://" + t.Addr
	}
	return "tcp://" + t.Addr
}

// ParseTarget reads tcp://HOST:PORT or tls://HOST:PORT.
func ParseTarget(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("audit syslog target: %w", err)
	}
	if u.Scheme != "tcp" && u.Scheme != "tls" {
		return Target{}, fmt.Errorf("audit syslog target %q: want tcp://HOST:PORT or tls://HOST:PORT", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Target{}, fmt.Errorf("audit syslog target %q: want only a host and a port", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return Target{}, fmt.Errorf("audit syslog target %q: want HOST:PORT", s)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return Target{}, fmt.Errorf("audit syslog target %q: port: %w", s, err)
	}
	return Target{TLS: u.Scheme == "tls", Addr: u.Host}, nil
}

// Defaults of Config.
const (
	DefaultBatch        = 500
	DefaultSessionRows  = 10_000
	DefaultPoll         = time.Second
	DefaultDrainTimeout = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
)

// closeDrain bounds the last checkpoint when the forwarder stops.
const closeDrain = 2 * time.Second

// Config sets up a Forwarder. Zero durations and counts take the defaults.
type Config struct {
	// Target is tcp://HOST:PORT or tls://HOST:PORT.
	Target string
	// TLS configures tls:// (trusted roots, client certificate); nil: the
	// system's roots. ServerName defaults to the target's host.
	TLS *tls.Config
	// CursorPath is the cursor file (DATA/CursorFile).
	CursorPath string
	// Hostname is the HOSTNAME of the messages ("": the nil value).
	Hostname string
	// Batch is how many rows of one chain one query reads.
	Batch int
	// SessionRows is how many rows one connection carries before it is
	// checkpointed (closed cleanly and the cursor saved).
	SessionRows int
	// Poll is how often the audit log is read for new rows when all were
	// sent; a connection stays open one Poll with nothing to send.
	Poll time.Duration
	// DrainTimeout is how long the receiver may take, after the end of a
	// connection's stream, to close its side (which says it read it all).
	DrainTimeout time.Duration
	// WriteTimeout bounds each write to the receiver.
	WriteTimeout time.Duration
	// DialTimeout bounds each connection attempt, TLS handshake included.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed attempts
	// (doubling, with jitter).
	BackoffMin, BackoffMax time.Duration
	// Now is the clock of the lag's age and the outages' lengths.
	Now func() time.Time
	Log *slog.Logger
}

// Forwarder sends the audit log to a syslog receiver. Rows are sent on a
// connection in chain order; when the connection has carried SessionRows
// rows, or has had nothing to send for a Poll, it is checkpointed: the
// forwarder ends its stream (TCP half-close, or TLS close_notify) and waits
// for the receiver to close its side, which a receiver does only once it
// has read everything before the end of the stream. Only then are the
// rows confirmed and the cursor saved. A connection the receiver closed or
// reset early, a write or drain that timed out, leaves the cursor where it
// was: the next connection sends those rows again (at least once).
type Forwarder struct {
	src    Source
	cfg    Config
	target Target
	log    *slog.Logger

	mu        sync.Mutex
	cursor    Cursor        // confirmed positions
	heads     map[int]int64 // highest position seen per chain, for Lag
	down      bool          // in an outage: failed since the last success
	downSince time.Time
	saveErr   bool          // the last cursor save failed (logged once)
	forwarded atomic.Uint64 // rows confirmed
	sentRows  atomic.Uint64 // rows written, confirmed or not
	failures  atomic.Uint64 // failed connections
	sessions  atomic.Uint64 // checkpointed connections
	up        atomic.Bool   // the last connection was checkpointed
	rewinds   atomic.Uint64 // chains found cut back or rewritten
}

// New checks cfg and reads the cursor file. A cursor of another target is
// set aside: the new receiver gets the whole log from the start.
func New(src Source, cfg Config) (*Forwarder, error) {
	t, err := ParseTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	if cfg.CursorPath == "" {
		return nil, errors.New("audit syslog: no cursor file")
	}
	cfg.Batch = cmp.Or(cfg.Batch, DefaultBatch)
	cfg.SessionRows = cmp.Or(cfg.SessionRows, DefaultSessionRows)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.DrainTimeout = cmp.Or(cfg.DrainTimeout, DefaultDrainTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	cfg.BackoffMin = cmp.Or(cfg.BackoffMin, DefaultBackoffMin)
	cfg.BackoffMax = max(cmp.Or(cfg.BackoffMax, DefaultBackoffMax), cfg.BackoffMin)
	if cfg.Batch < 1 || cfg.SessionRows < 1 || cfg.Poll < 0 {
		return nil, errors.New("audit syslog: batch, session rows and poll must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c, err := LoadCursor(cfg.CursorPath)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{src: src, cfg: cfg, target: t, log: cfg.Log.With("component", "audit-syslog", "target", t.String()),
		heads: map[int]int64{}}
	if c.Target != t.String() {
		if c.Target != "" {
			f.log.Info("audit syslog: a new receiver; the whole audit log is sent to it from the start", "previous", c.Target)
		}
		c = Cursor{Target: t.String(), Seq: map[int]int64{}}
	}
	f.cursor = c
	return f, nil
}

// Target is where the forwarder sends.
func (f *Forwarder) Target() Target { return f.target }

// Confirmed is, per chain, the last position the receiver is known to
// have read.
func (f *Forwarder) Confirmed() map[int]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int]int64, len(f.cursor.Seq))
	for k, v := range f.cursor.Seq {
		out[k] = v
	}
	return out
}

// Stats are the forwarder's counters.
type Stats struct {
	// Forwarded counts rows the receiver confirmed (with the resends).
	Forwarded uint64
	// Sent counts rows written, confirmed or not.
	Sent uint64
	// Failures counts connections that failed (dial, write, early close,
	// drain), Sessions those checkpointed.
	Failures, Sessions uint64
	// Up is whether the last connection was checkpointed.
	Up bool
	// Rewinds counts chains found cut back or rewritten in the database
	// behind the cursor (each sent again from its start).
	Rewinds uint64
}

// Stats reads the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{Forwarded: f.forwarded.Load(), Sent: f.sentRows.Load(), Failures: f.failures.Load(),
		Sessions: f.sessions.Load(), Up: f.up.Load(), Rewinds: f.rewinds.Load()}
}

// lagScan is how many rows one query of Lag asks for while it finds a
// chain's newest position (a store may return fewer).
const lagScan = 500

// Lag is how far the receiver is behind: the rows not yet confirmed, and
// the age of the oldest of them (0 when there are none). It reads the
// rows added since its last call, lagScan rows a query.
func (f *Forwarder) Lag(ctx context.Context) (rows int64, behind time.Duration, err error) {
	confirmed := f.Confirmed()
	now := f.cfg.Now()
	for chain := range f.src.AuditChains() {
		f.mu.Lock()
		head := max(f.heads[chain], confirmed[chain])
		f.mu.Unlock()
		for {
			batch, err := f.src.AuditAfter(ctx, chain, head, lagScan)
			if err != nil {
				return 0, 0, fmt.Errorf("audit syslog lag: %w", err)
			}
			if len(batch) == 0 {
				break
			}
			head = max(head, batch[len(batch)-1].Seq)
		}
		f.mu.Lock()
		f.heads[chain] = max(f.heads[chain], head)
		f.mu.Unlock()
		if head <= confirmed[chain] {
			continue
		}
		rows += head - confirmed[chain]
		first, err := f.src.AuditAfter(ctx, chain, confirmed[chain], 1)
		if err != nil {
			return 0, 0, fmt.Errorf("audit syslog lag: %w", err)
		}
		if len(first) > 0 {
			behind = max(behind, now.Sub(first[0].At))
		}
	}
	return rows, behind, nil
}

// Run forwards until ctx ends; then it checkpoints the open connection
// (bounded by a short drain) and returns.
func (f *Forwarder) Run(ctx context.Context) {
	backoff := f.cfg.BackoffMin
	for ctx.Err() == nil {
		n, err := f.session(ctx)
		if err != nil {
			f.failed(err)
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, f.cfg.BackoffMax)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		backoff = f.cfg.BackoffMin
		if n == 0 && !sleep(ctx, f.cfg.Poll) {
			return
		}
	}
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// failed counts a failed connection, and logs a WARN at the first failure
// of an outage only.
func (f *Forwarder) failed(err error) {
	f.failures.Add(1)
	f.up.Store(false)
	f.mu.Lock()
	first := !f.down
	if first {
		f.down, f.downSince = true, f.cfg.Now()
	}
	f.mu.Unlock()
	if first {
		f.log.Warn("audit syslog: receiver unreachable or connection lost; rows wait in the database and go out when it is back (retrying with backoff, logged once per outage)", "err", err)
	} else {
		f.log.Debug("audit syslog: still failing", "err", err)
	}
}

// recovered ends an outage.
func (f *Forwarder) recovered() {
	f.up.Store(true)
	f.mu.Lock()
	was, since := f.down, f.downSince
	f.down = false
	f.mu.Unlock()
	if was {
		f.log.Info("audit syslog: receiver back; rows of the outage sent", "down_for", f.cfg.Now().Sub(since).Round(time.Millisecond))
	}
}

// next reads, for each chain, up to Batch rows after pos.
func (f *Forwarder) next(ctx context.Context, pos map[int]int64) ([]model.AuditEntry, error) {
	var rows []model.AuditEntry
	for chain := range f.src.AuditChains() {
		batch, err := f.src.AuditAfter(ctx, chain, pos[chain], f.cfg.Batch)
		if err != nil {
			return nil, fmt.Errorf("read audit chain %d after %d: %w", chain, pos[chain], err)
		}
		last := pos[chain]
		for _, e := range batch {
			if e.Chain != chain || e.Seq <= last {
				return nil, fmt.Errorf("audit chain %d after %d: row %d/%d out of order", chain, pos[chain], e.Chain, e.Seq)
			}
			last = e.Seq
		}
		rows = append(rows, batch...)
	}
	return rows, nil
}

// dial connects to the target.
func (f *Forwarder) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
	defer cancel()
	nd := &net.Dialer{KeepAlive: 30 * time.Second}
	if !f.target.TLS {
		return nd.DialContext(ctx, "tcp", f.target.Addr)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.cfg.TLS != nil {
		tc = f.cfg.TLS.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	}
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(f.target.Addr)
		tc.ServerName = host
	}
	return (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext(ctx, "tcp", f.target.Addr)
}

// errEarlyClose is a receiver closing the connection before the end of
// the stream: what it read of it is unknown.
var errEarlyClose = errors.New("the receiver closed the connection")

// session sends the rows after the cursor on one connection and
// checkpoints it; it returns the rows confirmed. With nothing to send it
// does not connect.
func (f *Forwarder) session(ctx context.Context) (int, error) {
	if err := f.checkSent(ctx); err != nil {
		return 0, err
	}
	pos, macs := f.Confirmed(), map[int][]byte{}
	rows, err := f.next(ctx, pos)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	conn, err := f.dial(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- err
				return
			}
		}
	}()
	// Writes wait WriteTimeout for the receiver; once ctx ends, closeDrain
	// at most, so that a stalled receiver cannot hold up a shutdown.
	setDeadline := func() {
		conn.SetWriteDeadline(time.Now().Add(f.cfg.WriteTimeout))
		if ctx.Err() != nil {
			conn.SetWriteDeadline(time.Now().Add(closeDrain))
		}
	}
	defer context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now().Add(closeDrain)) })()
	bw := bufio.NewWriterSize(conn, 32<<10)
	sent, idle := 0, false
	stopping := false
	for {
		if len(rows) == 0 {
			if idle || stopping {
				break
			}
			setDeadline()
			if err := bw.Flush(); err != nil {
				return 0, fmt.Errorf("write: %w", err)
			}
			t := time.NewTimer(f.cfg.Poll)
			select {
			case <-ctx.Done():
				stopping = true
			case err := <-closed:
				t.Stop()
				return 0, fmt.Errorf("%w: %v", errEarlyClose, err)
			case <-t.C:
			}
			t.Stop()
			idle = true
		} else {
			idle = false
			setDeadline()
			for _, e := range rows {
				msg, err := Message(e, f.cfg.Hostname)
				if err != nil {
					return 0, err
				}
				if _, err := bw.Write(Frame(msg)); err != nil {
					return 0, fmt.Errorf("write: %w", err)
				}
				pos[e.Chain], macs[e.Chain] = e.Seq, e.MAC
			}
			f.sentRows.Add(uint64(len(rows)))
			sent += len(rows)
			select {
			case err := <-closed:
				return 0, fmt.Errorf("%w: %v", errEarlyClose, err)
			default:
			}
			if sent >= f.cfg.SessionRows || ctx.Err() != nil {
				break
			}
		}
		if stopping {
			break
		}
		if rows, err = f.next(ctx, pos); err != nil {
			if ctx.Err() != nil {
				break
			}
			return 0, err
		}
		if err := f.stillSent(ctx, pos, macs); err != nil {
			return 0, err
		}
	}
	setDeadline()
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	if err := closeWrite(conn); err != nil {
		return 0, fmt.Errorf("end of stream: %w", err)
	}
	drain := f.cfg.DrainTimeout
	if ctx.Err() != nil {
		drain = min(drain, closeDrain)
	}
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w after the end of stream, not cleanly: %v", errEarlyClose, err)
		}
	case <-t.C:
		return 0, fmt.Errorf("the receiver did not close its side within %s of the end of stream", drain)
	}
	f.confirm(pos, macs, sent)
	return sent, nil
}

// closeWrite ends the stream of conn: TLS close_notify, or TCP FIN.
func closeWrite(conn net.Conn) error {
	switch c := conn.(type) {
	case *tls.Conn:
		return c.CloseWrite()
	case interface{ CloseWrite() error }:
		return c.CloseWrite()
	}
	return errors.New("connection cannot half-close")
}

// confirm moves the cursor to pos, whose rows had the MACs macs (the
// receiver read every row up to it):
// it saves the file first, so that Confirmed never runs ahead of it (nor
// of the counters).
func (f *Forwarder) confirm(pos map[int]int64, macs map[int][]byte, rows int) {
	f.mu.Lock()
	c := f.cursor.clone()
	f.mu.Unlock()
	for k, v := range pos {
		if v > c.Seq[k] {
			c.Seq[k] = v
			if m := macs[k]; len(m) > 0 {
				c.MAC[k] = m
			} else {
				delete(c.MAC, k)
			}
		}
	}
	err := SaveCursor(f.cfg.CursorPath, c)
	// The counters first too: whoever sees the rows confirmed sees them
	// counted.
	f.forwarded.Add(uint64(rows))
	f.sessions.Add(1)
	f.recovered()
	f.mu.Lock()
	f.cursor = c // only Run confirms: nothing moved it meanwhile
	first := err != nil && !f.saveErr
	f.saveErr = err != nil
	f.mu.Unlock()
	if first {
		f.log.Warn("audit syslog: cursor not saved; after a restart rows already sent go out again", "err", err)
	}
}

// clone is a copy of c whose maps the caller may change.
func (c Cursor) clone() Cursor {
	out := Cursor{Target: c.Target, Seq: make(map[int]int64, len(c.Seq)), MAC: make(map[int][]byte, len(c.MAC))}
	for k, v := range c.Seq {
		out.Seq[k] = v
	}
	for k, v := range c.MAC {
		out.MAC[k] = v
	}
	return out
}

// checkSent checks, for each chain, that the row at its confirmed
// position still holds the MAC it was sent with. A row missing or changed
// there means the chain was cut back (and maybe written on again) or
// rewritten in the database after the receiver got it: the rows written
// since would reuse positions the cursor has passed and never go out. The
// chain is then sent again from its start (the receiver holds both
// versions, to compare), and the event is logged at ERROR and counted.
func (f *Forwarder) checkSent(ctx context.Context) error {
	f.mu.Lock()
	c := f.cursor.clone()
	f.mu.Unlock()
	var rewound []int
	for chain, seq := range c.Seq {
		mac, known := c.MAC[chain]
		if seq == 0 || !known {
			continue
		}
		found, err := f.rowAt(ctx, chain, seq, mac)
		if err != nil {
			return err
		}
		if found == "" {
			continue
		}
		f.log.Error("audit syslog: a chain was cut back or rewritten in the database after it was forwarded; sending it again from its start",
			"chain", chain, "row", seq, "found", found)
		f.rewinds.Add(1)
		delete(c.Seq, chain)
		delete(c.MAC, chain)
		rewound = append(rewound, chain)
	}
	if len(rewound) == 0 {
		return nil
	}
	err := SaveCursor(f.cfg.CursorPath, c)
	f.mu.Lock()
	f.cursor = c
	for _, chain := range rewound {
		delete(f.heads, chain)
	}
	f.mu.Unlock()
	return err
}

// rowAt says what is at place seq of chain now: "" when the row there
// still has mac, "missing" or "changed" otherwise.
func (f *Forwarder) rowAt(ctx context.Context, chain int, seq int64, mac []byte) (string, error) {
	rows, err := f.src.AuditAfter(ctx, chain, seq-1, 1)
	switch {
	case err != nil:
		return "", fmt.Errorf("read audit chain %d at %d: %w", chain, seq, err)
	case len(rows) == 1 && rows[0].Seq == seq && bytes.Equal(rows[0].MAC, mac):
		return "", nil
	case len(rows) == 1 && rows[0].Seq == seq:
		return "changed", nil
	}
	return "missing", nil
}

// errRewound ends a connection whose rows were cut back or rewritten in
// the database while it sent them: nothing of it is confirmed.
var errRewound = errors.New("a chain was cut back or rewritten while its rows were being sent")

// stillSent checks, after a read during a connection, that the last row
// the connection sent of each chain is still the one it sent: a chain cut
// back below it and grown past it again meanwhile would otherwise be read
// on from rows that replaced the ones sent, and confirmed with their MACs.
func (f *Forwarder) stillSent(ctx context.Context, pos map[int]int64, macs map[int][]byte) error {
	for chain, mac := range macs {
		found, err := f.rowAt(ctx, chain, pos[chain], mac)
		if err != nil {
			return err
		}
		if found != "" {
			f.log.Error("audit syslog: a chain was cut back or rewritten in the database while it was being forwarded; the connection is not confirmed",
				"chain", chain, "row", pos[chain], "found", found)
			f.rewinds.Add(1)
			return errRewound
		}
	}
	return nil
}
