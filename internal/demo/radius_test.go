package demo

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/camotp/camotp/internal/testenv"
	camradius "github.com/camotp/camotp/radius"
)

// TestDemoRADIUS: a busy RADIUS port leaves the demo running without
// RADIUS and says why; on a free one the demo client's secret (the same
// on every run) gets an officer the challenge with their camera's steps.
func TestDemoRADIUS(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", RADIUSAddr: busy.LocalAddr().String(), Log: testenv.Log(t)}
	d, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("busy radius port: %v", err)
	}
	if d.Server.RADIUSAddr() != "" || !strings.Contains(d.RADIUSNote, "is in use") {
		t.Fatalf("busy port: addr %q note %q", d.Server.RADIUSAddr(), d.RADIUSNote)
	}
	d.Close()

	cfg.RADIUSAddr = "127.0.0.1:0"
	var secrets []string
	for range 2 {
		d, err = Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		secrets = append(secrets, d.RADIUSSecret)
	}
	if secrets[0] == "" || secrets[0] != secrets[1] {
		t.Fatalf("demo secrets across runs: %q", secrets)
	}
	o := d.Cameras[0].Officer
	p := radius.New(radius.CodeAccessRequest, []byte(d.RADIUSSecret))
	p.Add(80, make(radius.Attribute, 16))
	rfc2865.UserName_SetString(p, o.Username)
	rfc2865.UserPassword_SetString(p, o.Password)
	raw, _ := p.Encode()
	if err := camradius.SignRequest(raw, []byte(d.RADIUSSecret)); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", d.Server.RADIUSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(raw)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := camradius.CheckResponse(buf[:n], raw, []byte(d.RADIUSSecret)); err != nil {
		t.Fatal(err)
	}
	resp, _ := radius.Parse(buf[:n], []byte(d.RADIUSSecret))
	if resp.Code != radius.CodeAccessChallenge || !strings.Contains(rfc2865.ReplyMessage_GetString(resp), o.Model.DisplayName()) {
		t.Fatalf("%v %q", resp.Code, rfc2865.ReplyMessage_GetString(resp))
	}
}
