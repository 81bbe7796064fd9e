package demo

import (
	"context"
	"testing"
	"time"

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
	if len(d.Cameras) != 2 || d.Cameras[0].Officer.Model == d.Cameras[1].Officer.Model {
		t.Fatalf("want a Body 4 and a Body 3 officer, got %+v", d.Cameras)
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
