package provisioning_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (Debian mosquitto / mosquitto-clients); CI installs it", b)
		}
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// sub runs mosquitto_sub with a persistent session and returns what it printed.
func sub(t *testing.T, addr string, st *device.State, topic string, wait int) (string, error) {
	h, p := hostPort(t, addr)
	args := []string{"-h", h, "-p", p, "-t", topic, "-q", "1", "-c", "-C", "1", "-W", fmt.Sprint(wait)}
	if st != nil {
		sn := st.Identity().Serial
		args = append(args, "-i", sn, "-u", sn, "-P", st.Identity().Key.Token(sn, time.Now()))
	} else {
		args = append(args, "-i", "anonymous-probe")
	}
	out, err := exec.Command("mosquitto_sub", args...).CombinedOutput()
	return string(out), err
}

func TestForeignClientsAgainstEmbeddedBroker(t *testing.T) {
	need(t, "mosquitto_sub", "mosquitto_pub")
	srv := testenv.Server(t, t.TempDir(), nil)
	addr := srv.MQTTAddr()
	a := testenv.Camera(t, srv, "CAM-A", device.Body4)
	testenv.Camera(t, srv, "CAM-B", device.Body3)

	// Anonymous: refused.
	out, err := sub(t, addr, nil, "cams/CAM-A/prov", 2)
	if err == nil || !strings.Contains(strings.ToLower(out), "not authori") {
		t.Fatalf("anonymous mosquitto_sub: err %v, output %q; want a refusal", err, out)
	}
	// A forged token (another camera's key) is refused too.
	h, p := hostPort(t, addr)
	forged := exec.Command("mosquitto_sub", "-h", h, "-p", p, "-i", "CAM-B", "-u", "CAM-B",
		"-P", a.Identity().Key.Token("CAM-B", time.Now()), "-t", "cams/CAM-B/prov", "-C", "1", "-W", "2")
	if out, err := forged.CombinedOutput(); err == nil || !strings.Contains(strings.ToLower(string(out)), "not authori") {
		t.Fatalf("forged token: err %v output %q", err, out)
	}

	// Camera A's credentials: create persistent subscriptions to its own and
	// to B's command topic, then provision both while A is away.
	// (each run times out with no message: only the session is wanted here)
	sub(t, addr, a, "cams/CAM-A/prov", 1)
	sub(t, addr, a, "cams/CAM-B/prov", 1)
	testenv.Op(t, srv, "CAM-A", "provision")
	testenv.Op(t, srv, "CAM-B", "provision")

	own, _ := sub(t, addr, a, "cams/CAM-A/prov", 3)
	if !strings.Contains(own, `"serial":"CAM-A"`) || !strings.Contains(own, `"box"`) {
		t.Fatalf("camera A did not get its own sealed command: %q", own)
	}
	// What crosses the broker is sealed: the server-side seed is not in it.
	seedA, err := srv.Store.Pending(context.Background(), "CAM-A")
	if err != nil || strings.Contains(own, seedA.Seed.Base32()) {
		t.Fatalf("seed visible on the wire (or no pending op: %v)", err)
	}
	other, _ := sub(t, addr, a, "cams/CAM-B/prov", 2)
	if strings.Contains(other, "CAM-B") {
		t.Fatalf("camera A read camera B's command: %q", other)
	}

	// A publishes a fake ack on B's topic: refused, B stays pending.
	pub := exec.Command("mosquitto_pub", "-h", h, "-p", p, "-i", "CAM-A", "-u", "CAM-A",
		"-P", a.Identity().Key.Token("CAM-A", time.Now()), "-t", "cams/CAM-B/ack", "-q", "1",
		"-m", `{"v":1,"serial":"CAM-B","op":"provision","version":1,"result":"ok","proof":"AAAA"}`)
	pub.CombinedOutput()
	// And junk on its own ack topic is dropped without harm.
	exec.Command("mosquitto_pub", "-h", h, "-p", p, "-i", "CAM-A", "-u", "CAM-A",
		"-P", a.Identity().Key.Token("CAM-A", time.Now()), "-t", "cams/CAM-A/ack", "-q", "1", "-m", "{{{{").CombinedOutput()
	time.Sleep(200 * time.Millisecond)
	for _, sn := range []string{"CAM-A", "CAM-B"} {
		c, err := srv.Store.Camera(context.Background(), sn)
		if err != nil || c.State != model.StatePending {
			t.Fatalf("%s: %+v %v; want still pending", sn, c, err)
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The same provisioning flow through Debian's mosquitto as an external broker.
func TestProvisionThroughExternalMosquitto(t *testing.T) {
	need(t, "mosquitto")
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o600)
	cmd := exec.Command("mosquitto", "-c", conf)
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start: %s", logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv := testenv.Server(t, filepath.Join(dir, "data"), func(c *server.Config) { c.MQTTExternal = "tcp://" + addr })
	if srv.MQTTAddr() != "" {
		t.Fatal("embedded broker started although an external one was given")
	}
	cam := testenv.Camera(t, srv, "EXT-1", device.Body4)
	agent := testenv.Agent(t, cam, "tcp://"+addr)
	v := testenv.Op(t, srv, "EXT-1", "provision")
	testenv.WaitCamera(t, srv.Store, "EXT-1", model.StateProvisioned, v)
	v2 := testenv.Op(t, srv, "EXT-1", "wipe")
	testenv.WaitCamera(t, srv.Store, "EXT-1", model.StateWiped, v2)
	// Presence through a broker that reports no sessions: the camera's own
	// "offline" before its clean disconnect.
	waitOnline(t, srv.Provisioning, 1)
	agent.Stop()
	waitOnline(t, srv.Provisioning, 0)
}
