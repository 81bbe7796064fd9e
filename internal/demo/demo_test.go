package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
)

func TestDemoStartsAndRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: testenv.Log(t), Issuer: "http://127.0.0.1:8080"}
	d, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]uint64{}
	for _, c := range d.Cameras {
		cam, err := d.Server.Store.Camera(context.Background(), c.Officer.Serial)
		if err != nil || cam.State != model.StateProvisioned || cam.AssignedUser != c.Officer.Username {
			t.Fatalf("%s: %+v %v", c.Officer.Serial, cam, err)
		}
		versions[c.Officer.Serial] = cam.Version
	}
	if len(d.Cameras) != 3 || d.Cameras[0].Officer.Model == d.Cameras[1].Officer.Model || d.Cameras[2].Officer.Role != RoleAdmin {
		t.Fatalf("want a Body 4 and a Body 3 officer and an admin, got %+v", d.Cameras)
	}
	first := d.Cameras[0].Officer
	client := d.Client
	if client == nil || client.ID != DemoClientID || client.Secret == "" {
		t.Fatalf("demo oidc client %+v", client)
	}
	d.Close()

	// Second run: same data, no duplicate errors, nothing re-provisioned.
	d, err = Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	defer d.Close()
	for _, c := range d.Cameras {
		cam, _ := d.Server.Store.Camera(context.Background(), c.Officer.Serial)
		if cam.Version != versions[c.Officer.Serial] || cam.State != model.StateProvisioned {
			t.Fatalf("%s re-provisioned on restart: v%d → v%d", c.Officer.Serial, versions[c.Officer.Serial], cam.Version)
		}
	}
	if d.Cameras[0].Officer.Password != first.Password {
		t.Fatal("demo passwords changed across runs")
	}
	if d.Client == nil || *d.Client != *client {
		t.Fatalf("demo oidc client changed across runs: %+v → %+v", client, d.Client)
	}
	// An officer signs in with the code their camera shows.
	code, body := testenv.API(t, d.Server, "", "POST", "/api/v1/auth/login", map[string]string{"username": first.Username, "password": first.Password})
	if code != 200 {
		t.Fatalf("login: %d %v", code, body)
	}
	shown := testenv.ScreenCode(t, d.Cameras[0].State, time.Now())
	if code, body := testenv.API(t, d.Server, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": shown}); code != 200 {
		t.Fatalf("verify: %d %v", code, body)
	}
}

// TestDemoAdminReachesConsole: the demo's admin signs in with the printed
// password and their camera's code, and the web console (/admin) lets
// them in; a data directory from before the admin (two users in
// demo-users.json) keeps its officers' passwords and gains the admin.
func TestDemoAdminReachesConsole(t *testing.T) {
	dir := t.TempDir()
	old := []Officer{
		{Username: "officer.body4", Password: "oldpasswordbody4", Serial: "DEMO-BC4-0001", Model: device.Body4},
		{Username: "officer.body3", Password: "oldpasswordbody3", Serial: "DEMO-BC3-0002", Model: device.Body3},
	}
	data, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "demo-users.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Start(context.Background(), Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: testenv.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Cameras[0].Officer.Password != "oldpasswordbody4" || d.Cameras[1].Officer.Password != "oldpasswordbody3" {
		t.Fatalf("officers' passwords changed: %+v", d.Cameras)
	}
	admin := d.Cameras[2]
	if admin.Officer.Username != AdminUsername || admin.Officer.Role != RoleAdmin {
		t.Fatalf("no admin: %+v", admin.Officer)
	}
	if !regexp.MustCompile(`^[a-z2-7]{16}$`).MatchString(admin.Officer.Password) {
		t.Fatalf("admin password %q is not 16 base32 letters and digits like the officers'", admin.Officer.Password)
	}
	kept, err := os.ReadFile(filepath.Join(dir, "demo-users.json"))
	if err != nil || !strings.Contains(string(kept), admin.Officer.Password) {
		t.Fatalf("admin password not kept for the next run: %s %v", kept, err)
	}
	code, body := testenv.API(t, d.Server, "", "POST", "/api/v1/auth/login", map[string]string{"username": admin.Officer.Username, "password": admin.Officer.Password})
	if code != 200 {
		t.Fatalf("admin login: %d %v", code, body)
	}
	shown := testenv.ScreenCode(t, admin.State, time.Now())
	code, body = testenv.API(t, d.Server, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": shown})
	if code != 200 {
		t.Fatalf("admin verify: %d %v", code, body)
	}
	req, _ := http.NewRequest("GET", "http://"+d.Server.HTTPAddr()+"/admin/users", nil)
	req.AddCookie(&http.Cookie{Name: "camotp_session", Value: body["sessionToken"].(string)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "officer.body4") {
		t.Fatalf("admin console: %d\n%s", resp.StatusCode, page)
	}
}
