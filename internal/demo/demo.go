// Package demo sets up camotp's one-command demo: the server with its
// embedded broker and SQLite under one data directory, a demo org with a
// Body 4 and a Body 3 officer and an administrator, and their cameras,
// really provisioned over MQTT and assigned. A second run reuses everything.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/atomicfile"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/oidc"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/radius"
	"github.com/camotp/camotp/signin"
)

// Officer is a demo user with a camera.
type Officer struct {
	Username string       `json:"username"`
	Password string       `json:"password"`
	Serial   string       `json:"serial"`
	Model    device.Model `json:"model"`
	// Role is the user's role: "" for an officer, RoleAdmin for the
	// administrator of the web console.
	Role string `json:"role,omitempty"`
}

// RoleAdmin is the role of the demo's administrator; AdminUsername is the
// user who has it. The admin signs in to the web console (/admin) with
// the password and the code of their camera, as the officers do.
const (
	RoleAdmin     = "admin"
	AdminUsername = "admin"
)

// demoUsers are the demo org's users, each with a camera: two officers and
// the administrator.
func demoUsers() []Officer {
	return []Officer{
		{Username: "officer.body4", Serial: "DEMO-BC4-0001", Model: device.Body4},
		{Username: "officer.body3", Serial: "DEMO-BC3-0002", Model: device.Body3},
		{Username: AdminUsername, Serial: "DEMO-BC4-0003", Model: device.Body4, Role: RoleAdmin},
	}
}

// Camera is a running demo camera.
type Camera struct {
	Officer Officer
	State   *device.State
	Agent   *provisioning.Agent
}

// Demo is the running demo.
type Demo struct {
	Server  *server.Server
	Cameras []Camera
	// RADIUSSecret is the demo RADIUS client's shared secret ("" when
	// RADIUS is off); RADIUSNote says why it is off when it was asked for.
	RADIUSSecret, RADIUSNote string
	// Client is the demo OpenID Connect client (nil when OIDC is off).
	Client *Client
}

// Client is the demo's OpenID Connect client, kept (0600) for the next run.
type Client struct {
	ID          string `json:"clientId"`
	Secret      string `json:"secret"`
	RedirectURI string `json:"redirectUri"`
}

// DemoClientID and DemoRedirectURI name the demo OpenID Connect client: any
// relying party on that loopback port (oauth2-proxy, a test app) can use it.
const (
	DemoClientID    = "demo-rp"
	DemoRedirectURI = "http://127.0.0.1:9999/callback"
)

// Config is what Start needs.
type Config struct {
	DataDir, HTTPAddr, MQTTAddr string
	// RADIUSAddr turns RADIUS on ("" off) with a demo client for 127.0.0.1;
	// an address in use leaves it off with a note instead of failing.
	RADIUSAddr   string
	MasterKeyEnv string
	// Issuer, when set, turns on the OpenID Connect provider and registers
	// the demo client.
	Issuer string
	Log    *slog.Logger
}

// RADIUSClient is the demo's RADIUS client: the NAS on this host.
const RADIUSClient = "demo-localhost"

// Start brings the demo up: server, users, cameras connected and
// provisioned, assignments. It is idempotent over the same DataDir.
func Start(ctx context.Context, cfg Config) (*Demo, error) {
	srv, err := server.Start(ctx, server.Config{DataDir: cfg.DataDir, HTTPAddr: cfg.HTTPAddr, MQTTAddr: cfg.MQTTAddr,
		MasterKeyEnv: cfg.MasterKeyEnv, Log: cfg.Log, Notify: server.NotifyConfig{DevOutbox: true}, OIDCIssuer: cfg.Issuer})
	if err != nil {
		return nil, err
	}
	// The demo organisation enables every method (codes by text, call and
	// email land in the development outbox), unless its admin changed that.
	if set, err := srv.SignIn.PolicyChosen(ctx); err != nil {
		srv.Close()
		return nil, err
	} else if !set {
		if err := srv.SignIn.SetPolicy(ctx, signin.Policy{RequireMFA: true, Methods: signin.OrgMethods}, "demo", ""); err != nil {
			srv.Close()
			return nil, err
		}
	}
	d := &Demo{Server: srv}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if cfg.Issuer != "" {
		if d.Client, err = demoClient(ctx, srv.Store, filepath.Join(cfg.DataDir, "demo-oidc.json")); err != nil {
			return nil, fmt.Errorf("demo oidc client: %w", err)
		}
	}
	creds, err := loadCredentials(filepath.Join(cfg.DataDir, "demo-users.json"))
	if err != nil {
		return nil, err
	}
	for _, o := range creds {
		cam, err := d.camera(ctx, cfg, o)
		if err != nil {
			return nil, fmt.Errorf("demo camera %s: %w", o.Serial, err)
		}
		d.Cameras = append(d.Cameras, cam)
	}
	if cfg.RADIUSAddr != "" {
		if err := d.startRADIUS(ctx, cfg); err != nil {
			return nil, err
		}
	}
	ok = true
	return d, nil
}

// startRADIUS serves RADIUS with the demo client (its secret kept 0600 in
// the data directory so every run prints the same one). A busy port is
// not fatal: the demo runs without RADIUS and says so.
func (d *Demo) startRADIUS(ctx context.Context, cfg Config) error {
	st := d.Server.Store
	path := filepath.Join(cfg.DataDir, "demo-radius.secret")
	secret, readErr := os.ReadFile(path)
	list, err := st.RadiusClients(ctx)
	if err != nil {
		return err
	}
	known := false
	for _, c := range list {
		if c.Name == RADIUSClient {
			known = readErr == nil && string(c.Secret) == string(secret)
		}
	}
	if !known {
		if err := st.RemoveRadiusClient(ctx, RADIUSClient); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		secret = []byte(radius.NewSecret())
		c := model.RadiusClient{Name: RADIUSClient, CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: secret}
		if err := st.AddRadiusClient(ctx, c); err != nil {
			return fmt.Errorf("demo radius client: %w", err)
		}
		if err := atomicfile.WriteFile(path, secret, 0o600); err != nil {
			return err
		}
	}
	err = d.Server.StartRADIUS(server.RADIUSConfig{Addr: cfg.RADIUSAddr, Separator: radius.DefaultSeparator})
	if errors.Is(err, syscall.EADDRINUSE) {
		d.RADIUSNote = fmt.Sprintf("RADIUS is off: %s is in use (another RADIUS server?). Free it, or: camotp demo --radius 127.0.0.1:11812", cfg.RADIUSAddr)
		cfg.Log.Warn("demo radius off: address in use", "addr", cfg.RADIUSAddr)
		return nil
	}
	if err != nil {
		return err
	}
	d.RADIUSSecret = string(secret)
	return nil
}

// loadCredentials returns the demo users with passwords generated on the
// first run and kept (0600) for the next. A file from an earlier version
// that lacks a user (the admin) keeps the users it has and gains the others.
func loadCredentials(path string) ([]Officer, error) {
	kept := map[string]Officer{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var saved []Officer
		if err := json.Unmarshal(data, &saved); err != nil || len(saved) == 0 {
			return nil, fmt.Errorf("%s is malformed: delete it and the demo users to start over", path)
		}
		for _, o := range saved {
			kept[o.Username] = o
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read demo users: %w", err)
	}
	out := demoUsers()
	added := false
	for i := range out {
		if o, ok := kept[out[i].Username]; ok && o.Password != "" {
			out[i].Password = o.Password
			continue
		}
		// Letters and digits only (base32, 80 bits): a password starting
		// with "-" is read as an option when typed on a command line.
		out[i].Password = strings.ToLower(rand.Text()[:16])
		added = true
	}
	if !added {
		return out, nil
	}
	data, _ = json.MarshalIndent(out, "", "  ")
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("keep demo users: %w", err)
	}
	return out, nil
}

func (d *Demo) camera(ctx context.Context, cfg Config, o Officer) (Camera, error) {
	st := d.Server.Store
	dir := filepath.Join(cfg.DataDir, "cameras", o.Serial)
	cs, err := device.OpenState(dir)
	if err != nil {
		if cs, err = device.InitState(dir, o.Serial, o.Model); err != nil {
			return Camera{}, err
		}
	}
	pub := cs.Identity().Public()
	if err := st.AddCamera(ctx, o.Serial, o.Model, pub.PublicKey); err != nil && !errors.Is(err, storage.ErrExists) {
		return Camera{}, err
	}
	if _, _, err := st.User(ctx, o.Username); errors.Is(err, storage.ErrNotFound) {
		hash, err := password.Hash(o.Password)
		if err != nil {
			return Camera{}, err
		}
		if err := st.AddUser(ctx, model.User{Username: o.Username, Email: o.Username + "@demo.example", Role: o.Role}, hash); err != nil {
			return Camera{}, err
		}
	}
	agent := provisioning.NewAgent(cs, provisioning.LinkConfig{Broker: "tcp://" + d.Server.MQTTAddr(), Log: cfg.Log})
	agent.Start()
	cam := Camera{Officer: o, State: cs, Agent: agent}
	c, err := st.Camera(ctx, o.Serial)
	if err != nil {
		return cam, err
	}
	_, seedErr := cs.Seed()
	if c.State != model.StateProvisioned || seedErr != nil || c.PendingOp != "" {
		if c.PendingOp == "" {
			op := model.OpProvision
			if c.State == model.StateProvisioned {
				op = model.OpRotate // the camera lost its seed: give it a new one
			}
			if _, err := d.Server.Provisioning.Start(ctx, o.Serial, op, "demo", ""); err != nil {
				return cam, err
			}
		}
		if err := waitProvisioned(ctx, st, o.Serial, 30*time.Second); err != nil {
			return cam, err
		}
	}
	if err := st.Assign(ctx, o.Serial, o.Username); err != nil {
		return cam, err
	}
	return cam, nil
}

func waitProvisioned(ctx context.Context, st storage.Store, serial string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		c, err := st.Camera(ctx, serial)
		if err == nil && c.State == model.StateProvisioned && c.PendingOp == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("camera %s was not provisioned within %s", serial, wait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the cameras and the server.
func (d *Demo) Close() {
	for _, c := range d.Cameras {
		c.Agent.Stop()
	}
	d.Server.Close()
}

// demoClient returns the demo client, registering it (and keeping its
// secret at path) on the first run, or again when either is missing.
func demoClient(ctx context.Context, st storage.Store, path string) (*Client, error) {
	var c Client
	data, err := os.ReadFile(path)
	if err == nil && json.Unmarshal(data, &c) == nil && c.Secret != "" {
		if _, err := st.OIDCClient(ctx, c.ID); err == nil {
			return &c, nil
		}
	}
	if err := st.RemoveOIDCClient(ctx, DemoClientID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	reg, secret, err := oidc.NewClient(DemoClientID, []string{DemoRedirectURI}, false)
	if err != nil {
		return nil, err
	}
	if err := st.AddOIDCClient(ctx, reg); err != nil {
		return nil, err
	}
	c = Client{ID: DemoClientID, Secret: secret, RedirectURI: DemoRedirectURI}
	data, _ = json.MarshalIndent(c, "", "  ")
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return &c, nil
}
