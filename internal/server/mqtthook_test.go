package server_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/broker"
	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/secretfile"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// With MQTTHook the server answers EMQX's hook for its registered cameras
// (signed token or derived password), behind a 0600 bearer token file; the
// server key it hands out is the one the passwords derive from.
func TestMQTTHookWiring(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, func(c *server.Config) { c.MQTTHook = true })
	fi, err := os.Stat(filepath.Join(dir, server.MQTTHookTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hook token file: %v %v", fi, err)
	}
	raw, err := secretfile.LoadOrCreate(filepath.Join(dir, server.MQTTHookTokenFile), 32)
	if err != nil {
		t.Fatal(err)
	}
	token := secretfile.Text(raw)
	x := testenv.Camera(t, srv, "HOOK-X", device.Body4)
	testenv.Camera(t, srv, "HOOK-Y", device.Body4)

	code, body := testenv.API(t, srv, srv.AdminToken, "GET", provisioning.ServerKeyPath, nil)
	sk, err := base64.StdEncoding.DecodeString(body["serverKey"].(string))
	if code != 200 || err != nil || len(sk) != 32 {
		t.Fatalf("server key: %d %v %v", code, body, err)
	}
	pw, err := x.Identity().Key.BrokerPassword("HOOK-X", [32]byte(sk))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, token string
		body              any
		status            int
		result            string
	}{
		{"X with its derived password", broker.HookAuthPath, token, broker.HookAuthRequest{Username: "HOOK-X", Password: pw, ClientID: "HOOK-X"}, 200, "allow"},
		{"X's password as Y", broker.HookAuthPath, token, broker.HookAuthRequest{Username: "HOOK-Y", Password: pw, ClientID: "HOOK-Y"}, 200, "deny"},
		{"X reads Y's commands", broker.HookACLPath, token, broker.HookACLRequest{Username: "HOOK-X", ClientID: "HOOK-X", Topic: "cams/HOOK-Y/prov", Action: "subscribe"}, 200, "deny"},
		{"X reads its own", broker.HookACLPath, token, broker.HookACLRequest{Username: "HOOK-X", ClientID: "HOOK-X", Topic: "cams/HOOK-X/prov", Action: "subscribe"}, 200, "allow"},
		{"the admin token is not the hook token", broker.HookAuthPath, srv.AdminToken, broker.HookAuthRequest{Username: "HOOK-X", Password: pw, ClientID: "HOOK-X"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := testenv.API(t, srv, tc.token, "POST", tc.path, tc.body)
			if code != tc.status || (tc.result != "" && out["result"] != tc.result) {
				t.Fatalf("%d %v; want %d %s", code, out, tc.status, tc.result)
			}
		})
	}
	// Without MQTTHook there is no hook.
	plain := testenv.Server(t, t.TempDir(), nil)
	if code, _ := testenv.API(t, plain, token, "POST", broker.HookAuthPath, "{}"); code != 404 && code != 405 {
		t.Fatalf("hook served without MQTTHook: %d", code)
	}
}
