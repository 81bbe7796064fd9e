package provisioning_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

func mustSeed(t *testing.T, src device.SeedSource) device.Seed {
	t.Helper()
	s, err := src.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProvisionRotateWipeEndToEnd(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	cam := testenv.Camera(t, srv, "BC4-0001", device.Body4)
	agent := testenv.Agent(t, cam, "tcp://"+srv.MQTTAddr())
	ctx := context.Background()

	v1 := testenv.Op(t, srv, "BC4-0001", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-0001", model.StateProvisioned, v1)
	if agent.Status() != "connected" {
		t.Fatalf("agent status %q", agent.Status())
	}
	server1, err := srv.Store.ActiveSeed(ctx, "BC4-0001")
	if err != nil {
		t.Fatal(err)
	}
	camSeed := mustSeed(t, cam)
	if !bytes.Equal(server1.Secret, camSeed.Secret) || len(camSeed.Secret) != provisioning.SeedBytes || camSeed.Version != v1 {
		t.Fatalf("camera seed v%d (%d bytes) differs from the server's", camSeed.Version, len(camSeed.Secret))
	}
	// The camera shows the code the server computes from its own copy.
	now := time.Now()
	c, err := device.New(device.Config{Serial: "BC4-0001", Model: device.Body4, Clock: device.FixedClock{T: now}, Seeds: cam})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []device.Gesture{{Kind: device.DoublePress, Button: device.Select}, {Kind: device.Press, Button: device.VolDown}, {Kind: device.Press, Button: device.Select}} {
		c.Apply(g)
	}
	want, _ := server1.Code(now)
	if got := c.Screen().Code; got != want {
		t.Fatalf("camera shows %q, server seed gives %q", got, want)
	}

	// Rotate: the old seed dies once the new proof is verified.
	v2 := testenv.Op(t, srv, "BC4-0001", "rotate")
	testenv.WaitCamera(t, srv.Store, "BC4-0001", model.StateProvisioned, v2)
	server2, _ := srv.Store.ActiveSeed(ctx, "BC4-0001")
	if bytes.Equal(server2.Secret, server1.Secret) || !bytes.Equal(mustSeed(t, cam).Secret, server2.Secret) {
		t.Fatal("rotate did not replace the seed on both sides")
	}

	// Wipe: the server stops verifying at once; the camera erases and acks.
	v3 := testenv.Op(t, srv, "BC4-0001", "wipe")
	if _, err := srv.Store.ActiveSeed(ctx, "BC4-0001"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("seed still active after wipe request: %v", err)
	}
	testenv.WaitCamera(t, srv.Store, "BC4-0001", model.StateWiped, v3)
	if _, err := cam.Seed(); !errors.Is(err, device.ErrNoSeed) {
		t.Fatalf("camera still holds a seed after wipe: %v", err)
	}
	if !strings.Contains(c.Screen().Text(), "Not provisioned") {
		t.Fatalf("wiped camera screen:\n%s", c.Screen().Text())
	}
	// Re-provisioning a wiped camera works.
	v4 := testenv.Op(t, srv, "BC4-0001", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-0001", model.StateProvisioned, v4)

	// Every step is audited, and no audit line carries seed material.
	log, err := srv.Store.AuditLog(ctx, "BC4-0001", 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action+"="+e.Result)
		if strings.Contains(e.Detail, server2.Base32()) {
			t.Fatal("seed in audit log")
		}
	}
	joined := strings.Join(actions, " ")
	for _, want := range []string{"camera.add=ok", "provision.start=ok", "provision.proof=ok", "rotate.start=ok", "rotate.proof=ok", "wipe.start=ok", "wipe.proof=ok"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %s: %s", want, joined)
		}
	}
}

func TestOfflineCameraAndServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	cam := testenv.Camera(t, srv, "BC3-0002", device.Body3)
	v := testenv.Op(t, srv, "BC3-0002", "provision")
	c, _ := srv.Store.Camera(context.Background(), "BC3-0002")
	if c.State != model.StatePending {
		t.Fatalf("offline camera state %s, want pending", c.State)
	}
	// The server (and its embedded broker) restarts before the camera is back.
	srv.Close()
	srv2 := testenv.Server(t, dir, nil)
	if srv2.AdminToken != srv.AdminToken {
		t.Fatal("admin token changed across restart")
	}
	testenv.Agent(t, cam, "tcp://"+srv2.MQTTAddr())
	testenv.WaitCamera(t, srv2.Store, "BC3-0002", model.StateProvisioned, v)
	seed, err := srv2.Store.ActiveSeed(context.Background(), "BC3-0002")
	if err != nil || !bytes.Equal(seed.Secret, mustSeed(t, cam).Secret) {
		t.Fatalf("after restart: %v", err)
	}
}

// A camera that is offline while the broker keeps running gets the queued
// command from its persistent session when it comes back.
func TestPersistentSessionDelivery(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	cam := testenv.Camera(t, srv, "WF-0003", device.Workforce)
	a := testenv.Agent(t, cam, "tcp://"+srv.MQTTAddr())
	v1 := testenv.Op(t, srv, "WF-0003", "provision")
	testenv.WaitCamera(t, srv.Store, "WF-0003", model.StateProvisioned, v1)
	a.Stop()
	v2 := testenv.Op(t, srv, "WF-0003", "rotate")
	time.Sleep(200 * time.Millisecond)
	if c, _ := srv.Store.Camera(context.Background(), "WF-0003"); c.Version != v1 || c.PendingOp != model.OpRotate {
		t.Fatalf("rotate completed while the camera was offline: %+v", c)
	}
	testenv.Agent(t, cam, "tcp://"+srv.MQTTAddr())
	testenv.WaitCamera(t, srv.Store, "WF-0003", model.StateProvisioned, v2)
	if mustSeed(t, cam).Version != v2 {
		t.Fatal("camera did not apply the queued rotate")
	}
}

func TestForgedAckDoesNotProvision(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	testenv.Camera(t, srv, "BC4-0009", device.Body4)
	v := testenv.Op(t, srv, "BC4-0009", "provision")
	ctx := context.Background()
	forged := []struct {
		name, topic string
		ack         provisioning.Ack
	}{
		{"wrong proof", "cams/BC4-0009/ack", provisioning.Ack{V: 1, Serial: "BC4-0009", Op: model.OpProvision, Version: v, Result: "ok", Proof: make([]byte, 32)}},
		{"no proof", "cams/BC4-0009/ack", provisioning.Ack{V: 1, Serial: "BC4-0009", Op: model.OpProvision, Version: v, Result: "ok"}},
		{"serial mismatch", "cams/OTHER/ack", provisioning.Ack{V: 1, Serial: "BC4-0009", Op: model.OpProvision, Version: v, Result: "ok"}},
		{"wrong version", "cams/BC4-0009/ack", provisioning.Ack{V: 1, Serial: "BC4-0009", Op: model.OpProvision, Version: v + 1, Result: "ok"}},
	}
	for _, f := range forged {
		data, _ := json.Marshal(f.ack)
		srv.Provisioning.HandleMessage(ctx, f.topic, data)
	}
	for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"v":1}`), bytes.Repeat([]byte("x"), 100000)} {
		srv.Provisioning.HandleMessage(ctx, "cams/BC4-0009/ack", junk)
		srv.Provisioning.HandleMessage(ctx, "cams/+/ack", junk)
		srv.Provisioning.HandleMessage(ctx, "elsewhere", junk)
	}
	c, err := srv.Store.Camera(ctx, "BC4-0009")
	if err != nil || c.State != model.StatePending || c.PendingVersion != v {
		t.Fatalf("forged acks changed state: %+v %v", c, err)
	}
}

func TestAdminAPIBadInput(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	st := testenv.Camera(t, srv, "BC4-0100", device.Body4)
	pub := st.Identity().Public()
	tok := srv.AdminToken
	good := func(mod func(*provisioning.CameraRequest)) provisioning.CameraRequest {
		r := provisioning.CameraRequest{Serial: "BC4-0101", Model: "body4", PublicKey: pub.PublicKey}
		mod(&r)
		return r
	}
	tests := []struct {
		name         string
		token        string
		method, path string
		body         any
		status       int
		errPart      string
	}{
		{"no token", "", "GET", "/api/v1/admin/cameras", nil, 401, "admin token"},
		{"wrong token", tok + "x", "GET", "/api/v1/admin/cameras", nil, 401, "admin token"},
		{"duplicate serial", tok, "POST", "/api/v1/admin/cameras", good(func(r *provisioning.CameraRequest) { r.Serial = "BC4-0100" }), 409, "already exists"},
		{"bad serial", tok, "POST", "/api/v1/admin/cameras", good(func(r *provisioning.CameraRequest) { r.Serial = "a/b" }), 400, "serial"},
		{"bad model", tok, "POST", "/api/v1/admin/cameras", good(func(r *provisioning.CameraRequest) { r.Model = "body9" }), 400, "model"},
		{"bad key", tok, "POST", "/api/v1/admin/cameras", good(func(r *provisioning.CameraRequest) { r.PublicKey = "cam1:AAAA" }), 400, "publicKey"},
		{"malformed json", tok, "POST", "/api/v1/admin/cameras", `{"serial":`, 400, "malformed JSON"},
		{"unknown field", tok, "POST", "/api/v1/admin/cameras", `{"serial":"X","evil":1}`, 400, "unknown field"},
		{"oversized", tok, "POST", "/api/v1/admin/cameras", `{"serial":"` + strings.Repeat("x", 70000) + `"}`, 400, "exceeds"},
		{"unknown serial provision", tok, "POST", "/api/v1/admin/cameras/NOPE/provision", nil, 404, "not found"},
		{"rotate unprovisioned", tok, "POST", "/api/v1/admin/cameras/BC4-0100/rotate", nil, 409, "only a provisioned camera"},
		{"assign to unknown user", tok, "POST", "/api/v1/admin/cameras/BC4-0100/assign", provisioning.AssignRequest{User: "ghost"}, 404, "ghost"},
		{"weak password", tok, "POST", "/api/v1/admin/users", provisioning.UserRequest{Username: "u", Email: "u@x", Password: "short"}, 400, "password"},
		{"bad username", tok, "POST", "/api/v1/admin/users", provisioning.UserRequest{Username: "a b", Email: "u@x", Password: "long enough pw"}, 400, "username"},
		{"unknown role", tok, "POST", "/api/v1/admin/users", provisioning.UserRequest{Username: "u", Email: "u@x", Password: "long enough pw", Role: "chief"}, 400, "role must be admin, fleet, security or officer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := testenv.API(t, srv, tc.token, tc.method, tc.path, tc.body)
			msg, _ := body["error"].(string)
			if code != tc.status || !strings.Contains(msg, tc.errPart) {
				t.Fatalf("%d %q; want %d containing %q", code, msg, tc.status, tc.errPart)
			}
		})
	}
}

func TestAssignmentRules(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	tok := srv.AdminToken
	testenv.Camera(t, srv, "CAM-A", device.Body4)
	testenv.Camera(t, srv, "CAM-B", device.Body3)
	for _, u := range []string{"alice", "bob"} {
		if code, body := testenv.API(t, srv, tok, "POST", "/api/v1/admin/users", provisioning.UserRequest{Username: u, Email: u + "@pd.example", Password: "password-" + u}); code != 201 {
			t.Fatalf("add user %s: %d %v", u, code, body)
		}
	}
	steps := []struct {
		path, user string
		status     int
	}{
		{"/api/v1/admin/cameras/CAM-A/assign", "alice", 200},
		{"/api/v1/admin/cameras/CAM-A/assign", "alice", 200}, // idempotent
		{"/api/v1/admin/cameras/CAM-B/assign", "alice", 409}, // one camera per user
		{"/api/v1/admin/cameras/CAM-A/assign", "bob", 409},   // camera already taken
		{"/api/v1/admin/cameras/CAM-A/unassign", "", 200},
		{"/api/v1/admin/cameras/CAM-A/assign", "bob", 200},
		{"/api/v1/admin/cameras/CAM-B/assign", "alice", 200},
	}
	for i, s := range steps {
		var body any
		if s.user != "" {
			body = provisioning.AssignRequest{User: s.user}
		}
		if code, out := testenv.API(t, srv, tok, "POST", s.path, body); code != s.status {
			t.Fatalf("step %d %s %s: %d %v, want %d", i, s.path, s.user, code, out, s.status)
		}
	}
	a, _ := srv.Store.CameraOf(context.Background(), "bob")
	b, _ := srv.Store.CameraOf(context.Background(), "alice")
	if a.Serial != "CAM-A" || b.Serial != "CAM-B" {
		t.Fatalf("assignments: bob=%s alice=%s", a.Serial, b.Serial)
	}
}

func TestSecretsAtRest(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	cam := testenv.Camera(t, srv, "BC4-0200", device.Body4)
	testenv.Agent(t, cam, "tcp://"+srv.MQTTAddr())
	v := testenv.Op(t, srv, "BC4-0200", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-0200", model.StateProvisioned, v)
	seed := mustSeed(t, cam)
	srv.Close()
	for _, name := range []string{server.MasterKeyFile, server.AdminTokenFile, server.MQTTSecretFile, server.ServerBoxKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	// The raw seed appears nowhere in the database files.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), server.DBFile) {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(data, seed.Secret) || bytes.Contains(data, []byte(seed.Base32())) {
			t.Fatalf("seed in plain text in %s", e.Name())
		}
	}
}

// waitConnected waits until n camera clients (plus the server's) are connected.
func waitConnected(b *testing.B, srv *server.Server, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for srv.MQTTClients() < int64(n+1) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d clients connected", srv.MQTTClients())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
