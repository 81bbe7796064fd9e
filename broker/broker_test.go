package broker

import (
	"github.com/camotp/camotp/internal/together"

	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/camotp/camotp/internal/camkey"
)

const (
	testServerUser   = "srv"
	testServerClient = "srv-client"
	testServerSecret = "s3cret"
)

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testBroker is a real broker on a loopback port with registered cameras.
type testBroker struct {
	*Broker
	cams map[string]camkey.PrivateKey
}

// startBroker starts a broker on 127.0.0.1:0 knowing the given cameras.
func startBroker(t *testing.T, mod func(*Config), serials ...string) *testBroker {
	t.Helper()
	tb := &testBroker{cams: map[string]camkey.PrivateKey{}}
	pub := keys{}
	for _, sn := range serials {
		k, err := camkey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tb.cams[sn], pub[sn] = k, k.Public()
	}
	cfg := Config{
		Addr: "127.0.0.1:0",
		Auth: NewAuth(pub, testServerUser, testServerClient, []byte(testServerSecret), nil, testLog()),
		Log:  testLog(),
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tb.Broker = b
	return tb
}

// token mints a camera's broker password.
func (tb *testBroker) token(serial string) string {
	return tb.cams[serial].Token(serial, time.Now())
}

// rawConnect dials addr (from local, when not nil), sends an MQTT 3.1.1
// CONNECT and returns the connection and the CONNACK return code; err is
// set when no CONNACK came (e.g. the broker closed the connection).
func rawConnect(t *testing.T, local *net.TCPAddr, addr, id, user, pass string, keepalive uint16) (net.Conn, byte, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("dial: %w", err)
	}
	t.Cleanup(func() { c.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: id, Keepalive: keepalive,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return c, 0, fmt.Errorf("write connect: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return c, 0, fmt.Errorf("read connack: %w", err)
	}
	c.SetReadDeadline(time.Time{})
	if ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("not a CONNACK: % x", ack)
	}
	return c, ack[3], nil
}

// ping sends PINGREQ and waits for PINGRESP.
func ping(c net.Conn) error {
	if _, err := c.Write([]byte{0xC0, 0}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if b[0] != 0xD0 {
		return fmt.Errorf("not a PINGRESP: % x", b)
	}
	return nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedByPeer reads from c until the broker closes it.
func closedByPeer(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open after 30 s")
	}
	return nil // EOF (io.Copy returns nil) or reset
}

// A flood of idle connections five times the cap: the broker holds exactly
// the cap, closes the rest at once, and takes a camera again once the
// flood is gone.
func TestFloodOverCap(t *testing.T) {
	const limit, n = 20, 100
	b := startBroker(t, func(c *Config) {
		c.MaxConns = limit
		c.ConnectTimeout = time.Minute // nothing expires during the test
	}, "CAM-A")
	conns := together.Flood(t, b.Addr(), n, nil)
	eventually(t, "every flood connection accepted or refused", func() bool {
		s := b.Stats()
		return s.ConnsAccepted+s.ConnsRejectedCap == n
	})
	s := b.Stats()
	if s.ConnsOpen != limit || s.ConnsPeak != limit || s.ConnsRejectedCap != n-limit {
		t.Fatalf("open %d peak %d refused %d; want %d, %d, %d", s.ConnsOpen, s.ConnsPeak, s.ConnsRejectedCap, limit, limit, n-limit)
	}
	if err := b.AcceptError(); err != nil {
		t.Fatalf("AcceptError at the cap: %v (the cap is policy, not a failure)", err)
	}
	// At the cap a camera is refused at once.
	if _, _, err := rawConnect(t, nil, b.Addr(), "CAM-A", "CAM-A", b.token("CAM-A"), 30); err == nil {
		t.Fatal("camera connected above the cap")
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	eventually(t, "the flood's connections released", func() bool { return b.Stats().ConnsOpen == 0 })
	if _, rc, err := rawConnect(t, nil, b.Addr(), "CAM-A", "CAM-A", b.token("CAM-A"), 30); err != nil || rc != 0 {
		t.Fatalf("camera after the flood: rc %d err %v", rc, err)
	}
}

// Connections that send no CONNECT, or half of one, are closed after the
// CONNECT deadline; connected clients are not (keep-alive 0 included).
func TestConnectDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := startBroker(t, func(c *Config) { c.ConnectTimeout = timeout }, "CAM-A", "CAM-B")
	a, rc, err := rawConnect(t, nil, b.Addr(), "CAM-A", "CAM-A", b.token("CAM-A"), 0)
	if err != nil || rc != 0 {
		t.Fatalf("CAM-A: rc %d err %v", rc, err)
	}
	bc, rc, err := rawConnect(t, nil, b.Addr(), "CAM-B", "CAM-B", b.token("CAM-B"), 60)
	if err != nil || rc != 0 {
		t.Fatalf("CAM-B: rc %d err %v", rc, err)
	}
	start := time.Now()
	idle := together.Flood(t, b.Addr(), 50, nil)
	slow := together.Flood(t, b.Addr(), 10, []byte{0x10, 0x20, 0x00}) // CONNECT header, 2 of 32 bytes
	var wg sync.WaitGroup
	errs := make(chan error, len(idle)+len(slow))
	for _, c := range append(idle, slow...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := closedByPeer(c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("flood closed after %s, before the %s deadline", el, timeout)
	}
	eventually(t, "only the two cameras open", func() bool { return b.Stats().ConnsOpen == 2 })
	// Both cameras connected before the flood: their accept deadline has
	// long passed, yet they stay connected.
	for _, c := range []net.Conn{a, bc} {
		if err := ping(c); err != nil {
			t.Fatalf("connected camera dropped: %v", err)
		}
	}
}

// One source address is held to its cap; another address still connects.
func TestPerAddressCap(t *testing.T) {
	const perIP, n = 5, 20
	b := startBroker(t, func(c *Config) {
		c.MaxConnsPerIP = perIP
		c.ConnectTimeout = time.Minute
	}, "CAM-A")
	together.Flood(t, b.Addr(), n, nil) // from 127.0.0.1
	eventually(t, "every flood connection accepted or refused", func() bool {
		s := b.Stats()
		return s.ConnsAccepted+s.ConnsRejectedPerIP == n
	})
	if s := b.Stats(); s.ConnsOpen != perIP || s.ConnsRejectedPerIP != n-perIP {
		t.Fatalf("open %d refused %d; want %d, %d", s.ConnsOpen, s.ConnsRejectedPerIP, perIP, n-perIP)
	}
	if _, _, err := rawConnect(t, nil, b.Addr(), "CAM-A", "CAM-A", b.token("CAM-A"), 30); err == nil {
		t.Fatal("a sixth connection from 127.0.0.1 was taken")
	}
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	if _, rc, err := rawConnect(t, other, b.Addr(), "CAM-A", "CAM-A", b.token("CAM-A"), 30); err != nil || rc != 0 {
		t.Fatalf("camera from 127.0.0.2: rc %d err %v", rc, err)
	}
}

// failingListener fails its first n Accepts with EMFILE, then accepts for real.
type failingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Accept errors do not end the accept loop; AcceptError reports them for
// the window and then clears.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := newConnGuard(Config{Now: clock, AcceptErrorWindow: 5 * time.Second}, testLog())
	gl := g.listen("test", &failingListener{Listener: ln, n: 3})
	defer gl.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := gl.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("Accept never returned the connection after EMFILE")
	}
	if n := g.acceptErrors.Load(); n != 3 {
		t.Fatalf("accept errors %d, want 3", n)
	}
	if err := g.acceptError(); err == nil || !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("acceptError right after EMFILE: %v", err)
	}
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if err := g.acceptError(); err != nil {
		t.Fatalf("acceptError after the window: %v", err)
	}
	// Close ends Accept with an error.
	done := make(chan error, 1)
	go func() { _, err := gl.Accept(); done <- err }()
	gl.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close returned no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
