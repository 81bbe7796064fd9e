package server_test

import (
	"sync"

	"github.com/camotp/camotp/internal/together"

	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// An idle-connection flood seven times the broker's cap: every flood
// connection is closed (over the cap at once, under it at the CONNECT
// deadline), HTTP stays up and ready, and afterwards a real camera
// connects and is provisioned. (Measured before: 5,000 idle connections
// stayed open forever and the listener died.)
func TestMQTTFloodThenProvision(t *testing.T) {
	const limit, n = 30, 200
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.MQTTMaxConns = limit
		c.MQTTConnectTimeout = 300 * time.Millisecond
	})
	conns := together.Flood(t, srv.MQTTAddr(), n, nil) // over the cap: reset at once
	if t.Failed() {
		return
	}
	// Every connection the broker took is closed by it within a generous bound.
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				errs <- errors.New("flood connection still open after 30 s")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var m map[string]float64
	for {
		m = scrape(t, srv, "")
		if m["camotp_mqtt_connections_open{}"] == 1 { // the server's own link
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections open %v after the flood; want 1", m["camotp_mqtt_connections_open{}"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m["camotp_mqtt_connections_refused_total{}"] < 1 {
		t.Fatalf("no connection refused over the cap of %d: %v", limit, m)
	}
	t.Logf("flood %d over cap %d: %v refused at once, the rest closed at the CONNECT deadline",
		n, limit, m["camotp_mqtt_connections_refused_total{}"])
	base := "http://" + srv.HTTPAddr()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+p, ""); code != 200 {
			t.Fatalf("%s after the flood: %d %s", p, code, body)
		}
	}
	testenv.ProvisionedCamera(t, srv, "FLOOD-1", device.Body4, "")
}
