package server_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/testenv"
)

// waitOnline polls the server's online count until it is want.
func waitOnline(t *testing.T, online func(context.Context) (int, error), want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := online(t.Context())
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("online: %d (%v), want %d", n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Presence comes from the embedded broker's own connect and disconnect
// events: a camera client that never publishes a status and has no will
// (mosquitto_sub with the camera's credentials) is online while connected
// and offline after a clean DISCONNECT (SIGINT) or a dead connection
// (SIGKILL).
func TestPresenceFromBrokerEvents(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("needs mosquitto_sub (Debian mosquitto-clients; .ci/run installs it)")
	}
	srv := testenv.Server(t, t.TempDir(), nil)
	host, port, _ := net.SplitHostPort(srv.MQTTAddr())
	online := srv.Provisioning.Online
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGKILL} {
		cam := testenv.Camera(t, srv, "BC4-P"+map[os.Signal]string{os.Interrupt: "1", syscall.SIGKILL: "2"}[sig], device.Body4)
		sn := cam.Identity().Serial
		sub := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-i", sn, "-u", sn,
			"-P", cam.Identity().Key.Token(sn, time.Now()), "-t", "cams/"+sn+"/prov", "-q", "1")
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		waitOnline(t, online, 1)
		sub.Process.Signal(sig)
		sub.Wait()
		waitOnline(t, online, 0)
		// The broker's own count agrees (only the server's link is left).
		waitOnline(t, func(context.Context) (int, error) { return int(srv.MQTTClients()), nil }, 1)
	}
}
