package rollover

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testclock"
)

// storeStarter starts operations in the store as provisioning.Service does
// (the next version, the pending seed), failing the first start of the
// serials in fail once each.
type storeStarter struct {
	st   *sqlite.Store
	mu   sync.Mutex
	fail map[string]bool
}

func (s *storeStarter) Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error) {
	s.mu.Lock()
	f := s.fail[serial]
	delete(s.fail, serial)
	s.mu.Unlock()
	if f {
		return 0, errors.New("broker unreachable")
	}
	seed := device.DefaultSeed(bytes.Repeat([]byte{7}, 20))
	return s.st.StartOp(ctx, serial, op, &seed, []byte("challenge"), func(v uint64) ([]byte, error) { return []byte("cmd"), nil })
}

// TestStepLeaseAndFailures: a claimed camera whose start failed is left to
// its lease and claimed again after it; a store that fails makes the step
// fail cleanly, with the error in its status.
func TestStepLeaseAndFailures(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	clk := testclock.NewManual(t0)
	dir := t.TempDir()
	key, err := masterkey.Load(filepath.Join(dir, "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "camotp.db"), key, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, sn := range []string{"CAM-1", "CAM-2", "CAM-3"} {
		if err := st.AddCamera(ctx, sn, device.Body4, "pub:"+sn); err != nil {
			t.Fatal(err)
		}
		seed := device.DefaultSeed(bytes.Repeat([]byte{1}, 20))
		v, err := st.StartOp(ctx, sn, model.OpProvision, &seed, []byte("c"), func(uint64) ([]byte, error) { return []byte("cmd"), nil })
		if err == nil {
			_, err = st.CompleteOp(ctx, sn, v)
		}
		if err == nil {
			err = st.SetPresence(ctx, sn, true, t0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetSetting(ctx, SettingKey, Policy{Every: "1h", MaxPerHour: 100}.Encode()); err != nil {
		t.Fatal(err)
	}
	starter := &storeStarter{st: st, fail: map[string]bool{"CAM-1": true}}
	s := New(st, starter, clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	steps := []struct {
		advance time.Duration
		started uint64
		due     int
	}{
		{2*time.Hour + 59*time.Minute, 2, 1}, // the hour's last minute: all may start; CAM-1's start fails
		{5 * time.Minute, 2, 1},              // CAM-1 is due, but leased to the failed start
		{Lease, 3, 0},                        // the lease ran out: claimed and started
	}
	for i, step := range steps {
		clk.Advance(step.advance)
		status, err := s.Step(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if s.Started() != step.started {
			t.Errorf("step %d: %d started, want %d (status %+v)", i, s.Started(), step.started, status)
		}
		if c, _ := s.Status(ctx); c.Due != step.due {
			t.Errorf("step %d: %d due after the step, want %d", i, c.Due, step.due)
		}
	}
	st.Close()
	status, err := s.Step(ctx)
	if err == nil || status.Error == "" || s.Last().Error == "" {
		t.Fatalf("step on a closed store: %+v %v, want an error in the status", status, err)
	}
}
