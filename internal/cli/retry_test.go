package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// flakyFront forwards to srv but fails the first n provision calls: odd
// ones drop the connection (server down), even ones answer 503.
func flakyFront(t *testing.T, srv *server.Server, n int) (*httptest.Server, func() int) {
	target, _ := url.Parse("http://" + srv.HTTPAddr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	failed := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/provision") {
			mu.Lock()
			fail := failed < n
			if fail {
				failed++
			}
			odd := failed%2 == 1
			mu.Unlock()
			if fail && odd {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			if fail {
				http.Error(w, "starting up", http.StatusServiceUnavailable)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front, func() int { mu.Lock(); defer mu.Unlock(); return failed }
}

func TestFleetSimRetriesWhileServerDown(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	front, failed := flakyFront(t, srv, 6)
	const n = 4
	args := fleetArgs(srv, filepath.Join(root, "fleet"), n)
	args[2] = front.URL // --server
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("fleet-sim: exit %d\n%s\n%s", code, out, errOut)
	}
	if failed() != 6 {
		t.Fatalf("the front failed %d calls, want 6", failed())
	}
	for _, want := range []string{fmt.Sprintf("%d/%d cameras provisioned", n, n), "0 failures", "admin calls retried"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFleetSimGivesUpAfterRetries(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	front, _ := flakyFront(t, srv, 1000)
	args := fleetArgs(srv, filepath.Join(root, "fleet"), 1, "--retries", "2", "--timeout", "3s")
	args[2] = front.URL
	out, errOut, code := run(t, args...)
	if code == 0 || !strings.Contains(out, "provision SIM-00000") || !strings.Contains(out, "1 failures") {
		t.Fatalf("fleet-sim against a server that never answers: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestFleetSimRetriesUserCreation: creating a user hashes its password,
// and a server whose hashing budget is taken answers 503; fleet-sim asks
// again, as for its other admin calls. A try whose answer was lost after
// the server created the user (the retry then meets 409) keeps the
// password it sent: the user signs in with the one in users.txt.
func TestFleetSimRetriesUserCreation(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	target, _ := url.Parse("http://" + srv.HTTPAddr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	failed := 0
	lost := map[string]bool{} // users created whose answer was lost
	const n, fail = 4, 6
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/admin/users" {
			proxy.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		failed++
		k := failed
		mu.Unlock()
		switch {
		case k > fail:
			proxy.ServeHTTP(w, r)
		case k%2 == 1: // the server's hashing budget is taken
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"too many sign-ins at once: try again in a moment"}`, http.StatusServiceUnavailable)
		default: // created, but the answer is lost on the way back
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			if rec.Code == http.StatusCreated || rec.Code == http.StatusOK {
				var req struct{ Username string }
				json.Unmarshal(body, &req)
				mu.Lock()
				lost[req.Username] = true
				mu.Unlock()
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	}))
	defer front.Close()
	dir := filepath.Join(root, "fleet")
	args := fleetArgs(srv, dir, n, "--assign")
	args[2] = front.URL // --server
	out, errOut, code := run(t, args...)
	if code != 0 || !strings.Contains(out, "0 failures") || !strings.Contains(out, "admin calls retried") {
		t.Fatalf("fleet-sim: exit %d\n%s\n%s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed <= fail || len(lost) == 0 {
		t.Fatalf("the front saw %d user creations, lost %d answers", failed, len(lost))
	}
	users, err := readUsers(filepath.Join(dir, "users.txt"))
	if err != nil || len(users) != n {
		t.Fatalf("users.txt: %v %v", users, err)
	}
	for user := range lost {
		status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": users[user]})
		if status != 200 || body["token"] == nil {
			t.Errorf("%s (answer lost, password %q) cannot sign in: %d %v", user, users[user], status, body)
		}
	}
}

// provisionOffline registers a camera that never connects and returns the
// admin command prefix.
func provisionOffline(t *testing.T, serial string) []string {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	testenv.Camera(t, srv, serial, device.Body4)
	return []string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile),
		"camera", "provision", serial}
}

func TestProvisionWaitTimeoutNamesState(t *testing.T) {
	args := append(provisionOffline(t, "BC4-0301"), "--wait", "2s")
	_, errOut, code := run(t, args...)
	want := "did not prove provision version 1 within 2s (state pending, provision pending, camera never seen)"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Fatalf("progress redraws on a pipe:\n%q", errOut)
	}
}

func TestProvisionWaitProgressOnTerminal(t *testing.T) {
	args := append(provisionOffline(t, "BC4-0302"), "--wait", "2s")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	cmd := exec.Command(binary, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&screen, ptmx); close(copied) }()
	cmd.Wait()
	select {
	case <-copied: // the last writer closed: EOF (or EIO) on the master
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output never ended")
	}
	got := screen.String()
	for _, want := range []string{"\r\x1b[Kcamera BC4-0302: waiting for the proof of provision version 1: state pending", "/2s", "(state pending, provision pending"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal lacks %q:\n%q", want, got)
		}
	}
}
