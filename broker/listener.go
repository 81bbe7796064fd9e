package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the connection limits.
const (
	// DefaultConnectTimeout is how long a new connection may take to send
	// its CONNECT packet before it is closed.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultAcceptErrorWindow is how long after a failed accept the
	// broker still reports that it cannot accept.
	DefaultAcceptErrorWindow = 5 * time.Second
	// maxAcceptBackoff bounds the wait between accept retries (as net/http).
	maxAcceptBackoff = time.Second
)

// connGuard enforces the broker's connection limits across its listeners:
// a cap on open connections, a cap per source address and a deadline for
// CONNECT. It also remembers accept failures for the readiness probe.
//
// Mochi's own listener returns from Serve on the first Accept error and
// keeps a connection that never sends CONNECT open forever; the guard's
// listener retries temporary errors and closes such connections.
type connGuard struct {
	maxConns       int
	maxPerIP       int
	connectTimeout time.Duration
	errWindow      time.Duration
	now            func() time.Time
	log            *slog.Logger

	mu        sync.Mutex
	open      map[*guardedConn]struct{}
	unstarted map[*guardedConn]struct{} // admitted, not yet read by mochi
	listeners []*guardedListener
	perIP     map[string]int
	peak      int
	closed    bool
	lastErr   error     // last accept error
	lastAt    time.Time // when it happened (clock now)

	accepted      atomic.Int64
	rejectedTotal atomic.Int64
	rejectedPerIP atomic.Int64
	acceptErrors  atomic.Int64
	lastRejectLog atomic.Int64 // unix nanoseconds of the last rejection log line
	unlogged      atomic.Int64 // rejections since that line
}

func newConnGuard(cfg Config, log *slog.Logger) *connGuard {
	g := &connGuard{
		maxConns:       cfg.MaxConns,
		maxPerIP:       cfg.MaxConnsPerIP,
		connectTimeout: cfg.ConnectTimeout,
		errWindow:      cfg.AcceptErrorWindow,
		now:            cfg.Now,
		log:            log,
		open:           map[*guardedConn]struct{}{},
		unstarted:      map[*guardedConn]struct{}{},
		perIP:          map[string]int{},
	}
	if g.connectTimeout == 0 {
		g.connectTimeout = DefaultConnectTimeout
	}
	if g.errWindow == 0 {
		g.errWindow = DefaultAcceptErrorWindow
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// listen wraps ln: the result is what mochi's listeners.NewNet serves.
func (g *connGuard) listen(id string, ln net.Listener) *guardedListener {
	l := &guardedListener{Listener: ln, g: g, id: id, done: make(chan struct{})}
	g.mu.Lock()
	g.listeners = append(g.listeners, l)
	g.mu.Unlock()
	return l
}

// admit registers c, or closes it at once when a cap is reached.
func (g *connGuard) admit(c net.Conn) (*guardedConn, bool) {
	ip := remoteIP(c)
	reason := ""
	g.mu.Lock()
	switch {
	case g.closed:
		reason = "broker closing"
	case g.maxConns > 0 && len(g.open) >= g.maxConns:
		reason = "connection cap reached"
		g.rejectedTotal.Add(1)
	case g.maxPerIP > 0 && g.perIP[ip] >= g.maxPerIP:
		reason = "per-address connection cap reached"
		g.rejectedPerIP.Add(1)
	}
	var gc *guardedConn
	if reason == "" {
		gc = &guardedConn{Conn: c, g: g, ip: ip}
		g.open[gc] = struct{}{}
		g.unstarted[gc] = struct{}{}
		g.perIP[ip]++
		g.peak = max(g.peak, len(g.open))
	}
	g.mu.Unlock()
	if gc == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // reset: no TIME_WAIT kept for a flood
		}
		c.Close()
		g.logRejection(ip, reason)
		return nil, false
	}
	g.accepted.Add(1)
	// The deadline is the socket's own (wall clock); mochi replaces it with
	// the keep-alive deadline once CONNECT is read.
	if err := c.SetDeadline(time.Now().Add(g.connectTimeout)); err != nil {
		g.started(gc) // never handed to mochi
		gc.Close()
		return nil, false
	}
	return gc, true
}

// logRejection logs at most one line a second, with the count since the last.
func (g *connGuard) logRejection(ip, reason string) {
	n := g.unlogged.Add(1)
	now := g.now().UnixNano()
	last := g.lastRejectLog.Load()
	if now-last < int64(time.Second) || !g.lastRejectLog.CompareAndSwap(last, now) {
		return
	}
	g.unlogged.Add(-n)
	g.log.Warn("mqtt connection refused", "remote", ip, "reason", reason, "refused_since_last_log", n,
		"max_conns", g.maxConns, "max_conns_per_ip", g.maxPerIP)
}

func (g *connGuard) release(gc *guardedConn) {
	g.mu.Lock()
	if _, ok := g.open[gc]; ok {
		delete(g.open, gc)
		if g.perIP[gc.ip]--; g.perIP[gc.ip] <= 0 {
			delete(g.perIP, gc.ip)
		}
	}
	g.mu.Unlock()
}

func (g *connGuard) acceptFailed(err error) {
	g.acceptErrors.Add(1)
	g.mu.Lock()
	g.lastErr, g.lastAt = err, g.now()
	g.mu.Unlock()
}

// started records that mochi has begun reading c.
func (g *connGuard) started(c *guardedConn) {
	g.mu.Lock()
	delete(g.unstarted, c)
	g.mu.Unlock()
}

// shutdown stops every listener and closes every connection, including
// those that never sent CONNECT (mochi's Close would wait for them).
//
// Mochi adds a connection to the wait group its Close waits on from the
// connection's own goroutine (a WaitGroup Add racing Wait): shutdown
// returns only once mochi has started reading every connection it was
// handed (or after timeout), so that its Close can run safely.
func (g *connGuard) shutdown(timeout time.Duration) {
	g.mu.Lock()
	g.closed = true
	lns := slices.Clone(g.listeners)
	g.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		conns := make([]*guardedConn, 0, len(g.open))
		for c := range g.open {
			conns = append(conns, c)
		}
		waiting := len(g.unstarted)
		g.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		if waiting == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// acceptError reports why new connections cannot be accepted now, or nil.
func (g *connGuard) acceptError() error {
	g.mu.Lock()
	closed, lastErr, lastAt := g.closed, g.lastErr, g.lastAt
	g.mu.Unlock()
	if closed {
		return errors.New("broker closed")
	}
	if lastErr != nil {
		if ago := g.now().Sub(lastAt); ago < g.errWindow {
			return fmt.Errorf("accept failed %s ago: %w", ago.Round(time.Millisecond), lastErr)
		}
	}
	// An accepted connection needs a file descriptor: check one is free
	// even when nobody is connecting.
	f, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("no file descriptor free: %w", err)
	}
	f.Close()
	return nil
}

// guardedListener is a net.Listener whose Accept survives temporary errors
// (EMFILE, ENFILE, ECONNABORTED, ...) and applies the guard's limits.
type guardedListener struct {
	net.Listener
	g    *connGuard
	id   string
	done chan struct{}
	once sync.Once
}

// Accept returns the next admitted connection; it returns an error only
// once the listener is closed.
func (l *guardedListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, err
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.g.acceptFailed(err)
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, maxAcceptBackoff)
			}
			l.g.log.Error("mqtt accept failed; retrying", "listener", l.id, "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if gc, ok := l.g.admit(c); ok {
			return gc, nil
		}
	}
}

// Close stops Accept.
func (l *guardedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// guardedConn releases its place in the guard when closed.
type guardedConn struct {
	net.Conn
	g    *connGuard
	ip   string
	once sync.Once
	read atomic.Bool
}

// Read reads from the connection; the first call tells the guard that mochi
// has taken the connection over.
func (c *guardedConn) Read(b []byte) (int, error) {
	if !c.read.Load() && c.read.CompareAndSwap(false, true) {
		c.g.started(c)
	}
	return c.Conn.Read(b)
}

// Close closes the connection and frees its place under the caps.
func (c *guardedConn) Close() error {
	c.once.Do(func() { c.g.release(c) })
	return c.Conn.Close()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}
