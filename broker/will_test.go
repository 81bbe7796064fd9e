package broker

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func needTool(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (Debian mosquitto-clients); CI installs it", b)
		}
	}
}

// serverSubscriber connects as the server's client and collects every
// message on filter.
func serverSubscriber(t *testing.T, addr, filter string) <-chan paho.Message {
	t.Helper()
	msgs := make(chan paho.Message, 16)
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(testServerClient).
		SetUsername(testServerUser).SetPassword(testServerSecret).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("server subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	if tok := c.Subscribe(filter, 1, nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return msgs
}

// mosquittoSubArgs are a camera's mosquitto_sub arguments with a last will.
func (tb *testBroker) mosquittoSubArgs(t *testing.T, serial, willTopic string) []string {
	h, p, err := net.SplitHostPort(tb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-h", h, "-p", p, "-i", serial, "-u", serial, "-P", tb.token(serial),
		"-t", "cams/" + serial + "/prov", "-q", "1", "-C", "1", "-W", "20",
		"--will-topic", willTopic, "--will-payload", "offline", "--will-qos", "1", "--will-retain"}
}

// A camera's last will must be on its own ack or status topic: a CONNECT
// with a will anywhere else is refused, so no such will is ever published
// or retained. (Measured before: SEC-0009 with a will on
// cams/SEC-0002/status marked SEC-0002 offline when killed.)
func TestWillOutsideACLRefused(t *testing.T) {
	needTool(t, "mosquitto_sub")
	b := startBroker(t, nil, "SEC-0009", "SEC-0002")
	msgs := serverSubscriber(t, b.Addr(), "cams/#")

	for _, topic := range []string{
		"cams/SEC-0002/status", // another camera's status
		"cams/SEC-0002/prov",   // another camera's command topic
		"cams/SEC-0009/prov",   // its own command topic: only the server publishes there
		"$SYS/x",
	} {
		out, err := exec.Command("mosquitto_sub", b.mosquittoSubArgs(t, "SEC-0009", topic)...).CombinedOutput()
		if err == nil || !strings.Contains(strings.ToLower(string(out)), "not authori") {
			t.Errorf("will on %s: err %v, output %q; want the CONNECT refused", topic, err, out)
		}
	}

	// Its own status topic is allowed: killed, the camera's will is
	// published and retained there.
	cmd := exec.Command("mosquitto_sub", b.mosquittoSubArgs(t, "SEC-0009", "cams/SEC-0009/status")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, "mosquitto_sub connected", func() bool { return b.Clients() == 2 })
	cmd.Process.Kill()
	select {
	case m := <-msgs:
		if m.Topic() != "cams/SEC-0009/status" || string(m.Payload()) != "offline" {
			t.Fatalf("will delivered on %s: %q; want cams/SEC-0009/status", m.Topic(), m.Payload())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the allowed will was never delivered")
	}
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic(), m.Payload())
	default:
	}
	if got := b.srv.Topics.Messages("cams/SEC-0002/#"); len(got) != 0 {
		t.Fatalf("retained on SEC-0002's topics: %v", got)
	}
	if got := b.srv.Topics.Messages("cams/SEC-0009/#"); len(got) != 1 || got[0].TopicName != "cams/SEC-0009/status" {
		t.Fatalf("retained on SEC-0009's topics: %v; want its will on status", got)
	}
}
