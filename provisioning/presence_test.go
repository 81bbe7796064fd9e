package provisioning_test

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// waitOnline polls the service's online count until it is want.
func waitOnline(t *testing.T, s *provisioning.Service, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := s.Online(t.Context())
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("online: %d (%v), want %d", n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOnlineAfterCleanDisconnect(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	broker := "tcp://" + srv.MQTTAddr()
	a1 := testenv.Agent(t, testenv.Camera(t, srv, "BC4-0101", device.Body4), broker)
	testenv.Agent(t, testenv.Camera(t, srv, "BC4-0102", device.Body4), broker)
	waitOnline(t, srv.Provisioning, 2)
	// A clean DISCONNECT discards the will: the agent says offline first.
	a1.Stop()
	if a1.Status() != provisioning.LinkOffline {
		t.Fatalf("stopped agent status %q", a1.Status())
	}
	waitOnline(t, srv.Provisioning, 1)
}

// errCut is what reads of a cut link return (paho ignores "use of closed
// network connection" as a close of its own).
var errCut = errors.New("radio link lost")

// cutConn reads errCut once its link is cut.
type cutConn struct {
	net.Conn
	d *cuttableDialer
}

func (c cutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.d.isCut() {
		return n, errCut
	}
	return n, err
}

func (d *cuttableDialer) isCut() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cut
}

// cuttableDialer connects until cut; then it closes the open connection
// without a DISCONNECT (a camera out of range) and refuses every dial.
type cuttableDialer struct {
	mu   sync.Mutex
	cut  bool
	open []net.Conn
}

func (d *cuttableDialer) dial(addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("no network")
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	d.open = append(d.open, c)
	return cutConn{Conn: c, d: d}, nil
}

func (d *cuttableDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.open {
		c.Close()
	}
}

func TestOnlineAfterUncleanDisconnect(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	cam := testenv.Camera(t, srv, "BC4-0103", device.Body4)
	a := provisioning.NewAgent(cam, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Log: testenv.Log(t)})
	var d cuttableDialer
	provisioning.SetDial(a, d.dial)
	var mu sync.Mutex
	var events []provisioning.LinkEventKind
	a.Observe = func(e provisioning.LinkEvent) {
		mu.Lock()
		events = append(events, e.Kind)
		mu.Unlock()
	}
	a.Start()
	t.Cleanup(a.Stop)
	waitOnline(t, srv.Provisioning, 1)
	// The link dies without a DISCONNECT: the broker publishes the will.
	d.cutAll()
	waitOnline(t, srv.Provisioning, 0)
	deadline := time.Now().Add(20 * time.Second)
	for a.Status() != provisioning.LinkConnecting {
		if time.Now().After(deadline) {
			t.Fatalf("agent status %q after its link died", a.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 3 || events[0] != provisioning.EventAttempt || events[1] != provisioning.EventUp || events[2] != provisioning.EventLost {
		t.Fatalf("link events %v", events)
	}
}

// TestSetPresence: presence is kept in the store (every node reads the
// same), per registered camera, and shown on the camera.
func TestSetPresence(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	s := srv.Provisioning
	for _, sn := range []string{"BC4-0201", "BC4-0202"} {
		testenv.Camera(t, srv, sn, device.Body4)
	}
	s.SetPresence("BC4-0201", true)
	s.SetPresence("BC4-0202", true)
	s.SetPresence("BC4-0202", true) // a repeat counts once
	s.SetPresence("BC4-0299", true) // not registered: not counted
	waitOnline(t, s, 2)
	s.SetPresence("BC4-0201", false)
	waitOnline(t, s, 1)
	if c, err := srv.Store.Camera(t.Context(), "BC4-0202"); err != nil || !c.Online {
		t.Fatalf("camera BC4-0202: %+v %v, want online", c, err)
	}
	if c, err := srv.Store.Camera(t.Context(), "BC4-0201"); err != nil || c.Online {
		t.Fatalf("camera BC4-0201: %+v %v, want offline", c, err)
	}
}
