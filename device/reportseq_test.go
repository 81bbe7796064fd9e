package device

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The clock report counter rises across restarts of the camera (a new
// State on the same directory), from goroutines at once too, and its file
// is 0600.
func TestReportSeqRisesAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cam")
	st, err := InitState(dir, "BC4-0001", Body4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				v, err := st.NextReportSeq()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[v] || v == 0 {
					t.Errorf("counter %d twice (or zero)", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var last uint64
	for v := range seen {
		last = max(last, v)
	}
	info, err := os.Stat(filepath.Join(dir, reportSeqName))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", reportSeqName, info, err)
	}
	for restart := range 3 {
		again, err := OpenState(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := again.NextReportSeq()
		if err != nil || v <= last {
			t.Fatalf("restart %d: counter %d %v, want above %d", restart, v, err, last)
		}
		last = v
	}
	if err := os.WriteFile(filepath.Join(dir, reportSeqName), []byte(`{"reserved":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broken.NextReportSeq(); err == nil {
		t.Fatal("a malformed counter file was accepted")
	}
}
