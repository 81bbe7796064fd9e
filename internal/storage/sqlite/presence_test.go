package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/together"
)

// TestPresenceOrder: presence events settle on the newest whatever order
// they arrive in; ClearPresence leaves newer events alone.
func TestPresenceOrder(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, sn := range []string{"BC4-1", "BC4-2"} {
		if err := s.AddCamera(ctx, sn, device.Body4, "k"); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.UnixMilli(1_800_000_000_000)
	steps := []struct {
		serial string
		online bool
		at     time.Duration
		want   int
	}{
		{"BC4-1", true, 10 * time.Millisecond, 1},
		{"BC4-1", false, 5 * time.Millisecond, 1}, // older: ignored
		{"BC4-2", true, 20 * time.Millisecond, 2},
		{"BC4-1", false, 30 * time.Millisecond, 1},
		{"BC4-1", true, 25 * time.Millisecond, 1}, // older: ignored
		{"BC4-9", true, 40 * time.Millisecond, 1}, // not registered
	}
	for i, st := range steps {
		if err := s.SetPresence(ctx, st.serial, st.online, t0.Add(st.at)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.OnlineCount(ctx); err != nil || n != st.want {
			t.Fatalf("step %d: %d online (%v), want %d", i, n, err, st.want)
		}
	}
	// BC4-2 came online at +20ms; clearing as of +15ms keeps it.
	if err := s.ClearPresence(ctx, t0.Add(15*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OnlineCount(ctx); n != 1 {
		t.Fatalf("%d online after an older clear, want 1", n)
	}
	if err := s.ClearPresence(ctx, t0.Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OnlineCount(ctx); n != 0 {
		t.Fatalf("%d online after clear, want 0", n)
	}
}

// TestClaimResendsOnce: nodes sweeping at once share the pending commands
// out — each to exactly one — and a claimed command is not due again
// before every has passed.
func TestClaimResendsOnce(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const cams = 40
	for i := range cams {
		sn := fmt.Sprintf("BC4-%04d", i)
		if err := s.AddCamera(ctx, sn, device.Body4, "k"); err != nil {
			t.Fatal(err)
		}
		seed := device.DefaultSeed([]byte("12345678901234567890"))
		if _, err := s.StartOp(ctx, sn, model.OpProvision, &seed, []byte("challenge"), func(uint64) ([]byte, error) { return []byte("cmd"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	now := time.UnixMilli(1_800_000_000_000)
	every := 30 * time.Second
	claimed := make([][]string, 8)
	together.Run(len(claimed), func(i int) {
		got, err := s.ClaimResends(ctx, now, every, 10)
		if err != nil {
			t.Error(err)
		}
		claimed[i] = got
	})
	seen := map[string]int{}
	for _, c := range claimed {
		for _, sn := range c {
			seen[sn]++
		}
	}
	if len(seen) != cams {
		t.Fatalf("%d cameras claimed, want all %d", len(seen), cams)
	}
	for sn, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", sn, n)
		}
	}
	if got, _ := s.ClaimResends(ctx, now.Add(every-time.Millisecond), every, 100); len(got) != 0 {
		t.Fatalf("claimed again before every passed: %v", got)
	}
	if got, _ := s.ClaimResends(ctx, now.Add(every), every, 100); len(got) != cams {
		t.Fatalf("%d due after every, want %d", len(got), cams)
	}
}
