package signin_test

import (
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// Every new hash has the configured parameters (also one an admin sets),
// and a user whose hash has others is re-hashed at the next sign-in.
func TestPasswordParametersAndRehash(t *testing.T) {
	vc := signin.DefaultConfig()
	vc.Argon2 = password.Params{Memory: 12 << 10, Time: 1, Threads: 1}
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) { c.SignIn = &vc })
	testenv.User(t, srv, "officer", "officer-password")
	hashOf := func() string {
		_, h, err := srv.Store.User(t.Context(), "officer")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	const want = "$m=12288,t=1,p=1$"
	if h := hashOf(); !strings.Contains(h, want) {
		t.Fatalf("admin-created hash %q, want the configured parameters %s", h, want)
	}
	// As an older camotp stored it (RFC 9106 parameters).
	old, err := password.HashWith(password.Params{Memory: 64 << 10, Time: 3, Threads: 2}, "officer-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.SetPassword(t.Context(), "officer", old); err != nil {
		t.Fatal(err)
	}
	// A wrong password changes nothing; the right one re-hashes.
	if status, _ := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": "officer", "password": "wrong password"}); status != 401 {
		t.Fatalf("wrong password: %d", status)
	}
	if hashOf() != old {
		t.Fatal("a failed sign-in changed the hash")
	}
	if status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": "officer", "password": "officer-password"}); status != 200 {
		t.Fatalf("right password: %d %v", status, body)
	}
	h := hashOf()
	if !strings.Contains(h, want) {
		t.Fatalf("hash after sign-in %q, want re-hashed with %s", h, want)
	}
	if ok, err := password.Check(h, "officer-password"); !ok || err != nil {
		t.Fatalf("re-hashed password does not check: %v %v", ok, err)
	}
}
