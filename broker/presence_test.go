package broker

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
)

// presenceLog records Presence events.
type presenceLog struct {
	mu     sync.Mutex
	events []string
}

func (p *presenceLog) record(serial string, online bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, fmt.Sprintf("%s:%v", serial, online))
}

func (p *presenceLog) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// waitEvents waits until exactly want has been recorded.
func (p *presenceLog) waitEvents(t *testing.T, want ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("presence events %v", want), func() bool { return slices.Equal(p.get(), want) })
}

func TestPresence(t *testing.T) {
	var log presenceLog
	b := startBroker(t, func(c *Config) { c.Presence = log.record }, "CAM-A", "CAM-B")
	connect := func(serial string) net.Conn {
		t.Helper()
		c, rc, err := rawConnect(t, nil, b.Addr(), serial, serial, b.token(serial), 30)
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d err %v", serial, rc, err)
		}
		return c
	}

	// The server's own client and refused cameras are not reported.
	if _, rc, err := rawConnect(t, nil, b.Addr(), testServerClient, testServerUser, testServerSecret, 30); err != nil || rc != 0 {
		t.Fatalf("server client: rc %d err %v", rc, err)
	}
	if _, rc, _ := rawConnect(t, nil, b.Addr(), "CAM-B", "CAM-B", b.token("CAM-A"), 30); rc == 0 {
		t.Fatal("CAM-B connected with CAM-A's token")
	}

	// Clean: CONNECT, DISCONNECT.
	a := connect("CAM-A")
	log.waitEvents(t, "CAM-A:true")
	if _, err := a.Write([]byte{0xE0, 0}); err != nil {
		t.Fatal(err)
	}
	closedByPeer(a)
	log.waitEvents(t, "CAM-A:true", "CAM-A:false")

	// Unclean: the TCP connection is reset under the session.
	a = connect("CAM-A")
	log.waitEvents(t, "CAM-A:true", "CAM-A:false", "CAM-A:true")
	a.(*net.TCPConn).SetLinger(0)
	a.Close()
	log.waitEvents(t, "CAM-A:true", "CAM-A:false", "CAM-A:true", "CAM-A:false")

	// Takeover: a second connection of the same camera replaces the first.
	// Whenever the first one's disconnect lands, the camera ends online.
	connect("CAM-B")
	connect("CAM-B")
	// Clients drops to 2 (server + CAM-B) once the old connection's
	// disconnect hook has returned; the new one's online event comes after
	// its CONNACK.
	eventually(t, "the taken-over connection gone and CAM-B online", func() bool {
		ev := log.get()
		return b.Clients() == 2 && ev[len(ev)-1] == "CAM-B:true"
	})
	got := log.get()[4:]
	if !slices.Equal(got, []string{"CAM-B:true", "CAM-B:true"}) && !slices.Equal(got, []string{"CAM-B:true", "CAM-B:false", "CAM-B:true"}) {
		t.Fatalf("takeover events %v; want CAM-B online last", got)
	}
	b.Close()
	eventually(t, "CAM-B offline after broker close", func() bool {
		ev := log.get()
		return ev[len(ev)-1] == "CAM-B:false"
	})
}
