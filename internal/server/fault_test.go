package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
)

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Sync()
	return path
}

// A full disk under the database: clients get 503 "storage unavailable:
// disk full" (never a bare 500), /readyz is not ready, lost audit entries
// are counted; once space is freed everything recovers.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.Mkdir(dir, 0o700)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=6m,mode=0700"); err != nil {
		t.Skipf("mounting a small tmpfs needs root (CI runs as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	srv := testenv.Server(t, dir, nil)
	testenv.User(t, srv, "alice", "pw-alice-long")
	base := "http://" + srv.HTTPAddr()
	login := func() (int, string, string) {
		resp, err := http.Post(base+"/api/v1/auth/login", "application/json",
			strings.NewReader(`{"username":"alice","password":"pw-alice-long"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error, resp.Header.Get("Retry-After")
	}
	if code, msg, _ := login(); code != 200 {
		t.Fatalf("login before the disk filled: %d %s", code, msg)
	}
	filler := fill(t, dir)

	// SQLite reuses WAL space already allocated, so the first few writes
	// may still fit; within a few hundred the disk must tell.
	var saw503 bool
	for i := 0; i < 300 && !saw503; i++ {
		code, msg, retry := login()
		switch code {
		case 200:
		case 503:
			if msg != "storage unavailable: disk full" || retry == "" {
				t.Fatalf("503 %q Retry-After %q, want the reason and a Retry-After", msg, retry)
			}
			saw503 = true
		default:
			t.Fatalf("login on a full disk: %d %q, want 503", code, msg)
		}
	}
	if !saw503 {
		t.Fatal("300 logins on a full disk all succeeded")
	}
	ready := func() (int, string) { return get(t, base+"/readyz", "") }
	deadline := time.Now().Add(30 * time.Second)
	for code, body := ready(); code != 503 || !strings.Contains(body, "disk full"); code, body = ready() {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on a full disk: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Refused admin calls are audited; on a full disk the entry is lost,
	// and the loss is counted.
	for range 20 {
		get(t, base+"/api/v1/admin/cameras", "wrong-token")
	}
	if n := scrape(t, srv, "")["camotp_audit_write_failures_total{}"]; n < 1 {
		t.Fatalf("camotp_audit_write_failures_total = %v after audit writes on a full disk", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for code, body := ready(); code != 200; code, body = ready() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("/readyz after space was freed: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready again %v after space was freed", time.Since(start).Round(time.Millisecond))
	if code, msg, _ := login(); code != 200 {
		t.Fatalf("login after space was freed: %d %s", code, msg)
	}
}
