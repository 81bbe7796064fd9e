package testenv

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/camotp/camotp/internal/testclock"

	"encoding/base32"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
)

// Fleet is a server with officers, for the sign-in front doors' end-to-end
// tests (JSON API, pages, browser).
type Fleet struct {
	Srv   *server.Server
	Clock *testclock.Shift
	// Cams are the officers' cameras by user.
	Cams map[string]*device.State
	PW   string // alice's password when a test changed it

	dir, db string // the first node's data directory and database
	mods    []func(*server.Config)
}

// NewFleet serves with two officers: alice (Body 4) and bob (Body 3), both
// with provisioned, assigned cameras; carol has a camera that is registered
// but not provisioned; dave has none. Every user's password is
// "pw-USER-long".
func NewFleet(t *testing.T, mods ...func(*server.Config)) *Fleet {
	t.Helper()
	clk := &testclock.Shift{}
	dir, db := t.TempDir(), ""
	srv := Server(t, dir, func(c *server.Config) {
		c.Now = clk.Now
		for _, m := range mods {
			m(c)
		}
		db = c.DB
	})
	f := &Fleet{Srv: srv, Clock: clk, Cams: map[string]*device.State{}, dir: dir, db: db, mods: mods}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		User(t, srv, u, "pw-"+u+"-long")
	}
	f.Cams["alice"] = ProvisionedCamera(t, srv, "BC4-A", device.Body4, "alice")
	f.Cams["bob"] = ProvisionedCamera(t, srv, "BC3-B", device.Body3, "bob")
	f.Cams["carol"] = Camera(t, srv, "WF-C", device.Workforce)
	Assign(t, srv, "WF-C", "carol")
	return f
}

// Dir is the first node's data directory.
func (f *Fleet) Dir() string { return f.dir }

// Node starts another node of the fleet's installation: its own data
// directory with copies of the first node's server.SharedFiles (as an
// operator copies them), the same database (the
// fleet's mods must have set a shared one, PostgreSQL) and the same clock.
func (f *Fleet) Node(t *testing.T) *server.Server {
	t.Helper()
	if f.db == "" {
		t.Fatal("Node: the fleet's database is its first node's SQLite file; set Config.DB to a PostgreSQL URL")
	}
	dir := t.TempDir()
	CopySharedFiles(t, f.dir, dir)
	return Server(t, dir, func(c *server.Config) {
		c.Now = f.Clock.Now
		for _, m := range f.mods {
			m(c)
		}
	})
}

// CopySharedFiles copies the server.SharedFiles that exist in the data
// directory from into to (0600), as an operator sets up another node.
func CopySharedFiles(tb testing.TB, from, to string) {
	tb.Helper()
	for _, name := range server.SharedFiles {
		data, err := os.ReadFile(filepath.Join(from, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// SetPolicy sets the organisation policy through the admin API.
func (f *Fleet) SetPolicy(t *testing.T, require bool, methods ...string) {
	t.Helper()
	status, body := API(t, f.Srv, f.Srv.AdminToken, "PUT", "/api/v1/admin/org/policy", map[string]any{"requireMfa": require, "methods": methods})
	if status != 200 {
		t.Fatalf("set policy: %d %v", status, body)
	}
}

// Login posts a password to the JSON API.
func (f *Fleet) Login(t *testing.T, user, pw string) (int, map[string]any) {
	return API(t, f.Srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": pw})
}

// Verify posts a code for the pending sign-in token to the JSON API.
func (f *Fleet) Verify(t *testing.T, token, code string) (int, map[string]any) {
	return API(t, f.Srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": token, "code": code})
}

// Pending signs user in with the password and returns the pending token
// of the body-camera challenge.
func (f *Fleet) Pending(t *testing.T, user string) string {
	t.Helper()
	code, body := f.Login(t, user, "pw-"+user+"-long")
	if code != 200 || body["authenticator"] != "bodycam" || body["authenticatorCode"] != "" {
		t.Fatalf("login %s: %d %v", user, code, body)
	}
	return body["token"].(string)
}

// Post calls the API (with the admin token on admin paths).
func (f *Fleet) Post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	token := ""
	if strings.HasPrefix(path, "/api/v1/admin/") {
		token = f.Srv.AdminToken
	}
	return API(t, f.Srv, token, "POST", path, body)
}

// GetList GETs an admin path answering a JSON array.
func (f *Fleet) GetList(t *testing.T, path string) (int, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.Srv.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.Srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Send asks the JSON API to send a code for the pending sign-in by method.
func (f *Fleet) Send(t *testing.T, tok, method string) (int, map[string]any) {
	t.Helper()
	return f.Post(t, "/api/v1/auth/send", map[string]string{"token": tok, "method": method})
}

// WrongCode is a code that no step of user's camera near now shows (so it
// is neither accepted nor taken for a camera whose clock is off).
func (f *Fleet) WrongCode(t *testing.T, user string) string {
	near := map[string]bool{}
	for k := -12; k <= 12; k++ {
		near[ScreenCode(t, f.Cams[user], f.Clock.Now().Add(time.Duration(k)*30*time.Second))] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i*7919%1000000); !near[c] {
			return c
		}
	}
}

// AppCode is the code an authenticator app shows for secret now
// (pquerna/otp, independent of the sign-in service's own checking loop).
func AppCode(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret); err != nil {
		t.Fatalf("secret %q is not base32: %v", secret, err)
	}
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
