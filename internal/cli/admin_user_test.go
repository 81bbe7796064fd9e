package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/camotp/camotp/provisioning"
)

// TestUserAddRole: --role sends the role field of POST
// /api/v1/admin/users as the server names the four roles ("user", the old
// name, is officer); any other value is a usage error and sends nothing.
func TestUserAddRole(t *testing.T) {
	var mu sync.Mutex
	var got []provisioning.UserRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/admin/users" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		var req provisioning.UserRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	env := Env{Getenv: func(k string) string {
		if k == "CAMOTP_ADMIN_TOKEN" {
			return "tok"
		}
		return ""
	}}
	for _, tc := range []struct {
		role, sent string
		code       int
	}{
		{"", "", 0},
		{"admin", "admin", 0},
		{"fleet", "fleet", 0},
		{"security", "security", 0},
		{"officer", "officer", 0},
		{"user", "officer", 0},
		{"chief", "", 2},
		{"Admin", "", 2},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		args := []string{"admin", "--server", srv.URL, "user", "add", "u1", "--email", "u1@pd.example", "--password-stdin"}
		if tc.role != "" {
			args = append(args, "--role", tc.role)
		}
		env.Stdin = strings.NewReader("a long password\n")
		out, errOut, code := runMain(t, env, args...)
		mu.Lock()
		sent := got
		mu.Unlock()
		if code != tc.code {
			t.Errorf("--role %q: exit %d (want %d): %s %s", tc.role, code, tc.code, out, errOut)
			continue
		}
		if tc.code != 0 {
			if len(sent) != 0 || !strings.Contains(errOut, "want admin, fleet, security or officer") {
				t.Errorf("--role %q: sent %+v, stderr %q", tc.role, sent, errOut)
			}
			continue
		}
		if len(sent) != 1 || sent[0].Role != tc.sent || sent[0].Username != "u1" || sent[0].Password != "a long password" {
			t.Errorf("--role %q: sent %+v, want role %q", tc.role, sent, tc.sent)
		}
	}
}
