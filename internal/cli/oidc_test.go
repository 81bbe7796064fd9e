package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// jwksKeys counts the keys the provider publishes.
func jwksKeys(t *testing.T, issuer string) []map[string]any {
	t.Helper()
	resp, err := http.Get(issuer + "/oidc/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

func TestAdminOIDCCommands(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	issuer := "http://" + addr
	srv := testenv.Server(t, dir, func(c *server.Config) { c.HTTPAddr, c.OIDCIssuer = addr, issuer })
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile), "oidc"}, args...)...)
	}
	if keys := jwksKeys(t, issuer); len(keys) != 1 || keys[0]["alg"] != "RS256" {
		t.Fatalf("first run JWKS: %v", keys)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"add-client", "--id", "records", "--redirect-uri", "https://records.pd.example/oidc/callback"}, 0, "client secret (shown once, only its hash is kept): "},
		{[]string{"add-client", "--id", "records", "--redirect-uri", "https://other.example/cb"}, 1, ""},
		{[]string{"add-client", "--id", "mdt", "--redirect-uri", "http://127.0.0.1:7777/cb", "--redirect-uri", "https://mdt.pd.example/cb", "--public", "--json"}, 0, `"public": true`},
		{[]string{"add-client", "--id", "insecure", "--redirect-uri", "http://records.pd.example/cb"}, 2, ""},
		{[]string{"add-client", "--id", "nouri"}, 2, ""},
		{[]string{"list"}, 0, "mdt      public, PKCE  http://127.0.0.1:7777/cb https://mdt.pd.example/cb\nrecords  confidential  https://records.pd.example/oidc/callback\n"},
		{[]string{"rotate-key", "--alg", "ES256"}, 0, "(ES256); the previous key stays in the JWKS"},
		{[]string{"rotate-key", "--alg", "HS256"}, 1, ""},
		{[]string{"remove", "mdt"}, 0, "client mdt removed"},
		{[]string{"remove", "mdt"}, 1, ""},
		{[]string{"list", "--json"}, 0, `"id": "records"`},
	} {
		out, errOut, code := admin(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("admin oidc %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %s", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut)
		}
		if strings.Contains(out, "secret") && strings.Contains(errOut, "secret") {
			t.Errorf("secret on stderr: %s", errOut)
		}
	}
	keys := jwksKeys(t, issuer)
	if len(keys) != 2 || keys[0]["alg"] != "ES256" || keys[1]["alg"] != "RS256" {
		t.Fatalf("JWKS after rotation (new ES256 key, old RS256 kept): %v", keys)
	}
}
