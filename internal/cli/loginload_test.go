package cli

import (
	"github.com/camotp/camotp/internal/together"

	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/password"
)

// statusKiB reads a "Name:  N kB" line of /proc/PID/status.
func statusKiB(t *testing.T, pid int, name string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("needs Linux /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// 100 logins at once against the real binary, each for a new unknown
// user (so no throttle stops them before hashing): the hashing memory
// budget holds the server's peak RSS growth under budget + 128 MiB, and
// every request is answered 200/401/429/503, none hangs. (The binary is
// built without the race detector, whose shadow memory would blur RSS.)
func TestParallelLoginsMemoryBounded(t *testing.T) {
	httpAddr := freeAddr(t)
	var out bytes.Buffer
	// Each login comes from its own address (through a trusted proxy): the
	// per-source share does not stop them, so the budget must.
	cmd := startBinary(t, &out, "serve", "--data", t.TempDir(), "--http", httpAddr, "--mqtt", freeAddr(t), "--trusted-proxies", "127.0.0.1/32")
	base := "http://" + httpAddr
	waitHealthy(t, base)
	pid := cmd.Process.Pid
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the server's peak RSS: %v", err)
	}
	before := statusKiB(t, pid, "VmHWM")
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	const n = 100
	statuses := make([]int, n)
	t0 := time.Now()
	together.Run(n, func(i int) {
		body := fmt.Sprintf(`{"username":"ghost-%d","password":"not the password"}`, i)
		req, _ := http.NewRequest("POST", base+"/api/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", i/200, i%200+1))
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("login %d: %v", i, err)
			return
		}
		resp.Body.Close()
		statuses[i] = resp.StatusCode
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	})
	elapsed := time.Since(t0)
	growth := statusKiB(t, pid, "VmHWM") - before
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	limit := int64(password.DefaultBudget>>10) + 128<<10
	t.Logf("%d parallel logins: statuses %v in %v; peak RSS grew %d MiB (limit %d MiB)", n, count, elapsed.Round(time.Millisecond), growth>>10, limit>>10)
	for s, k := range count {
		if s != 200 && s != 401 && s != 429 && s != 503 {
			t.Errorf("%d requests answered %d", k, s)
		}
	}
	if growth > limit {
		t.Fatalf("peak RSS grew %d MiB, over the hashing budget + 128 MiB (%d MiB)", growth>>10, limit>>10)
	}
}
