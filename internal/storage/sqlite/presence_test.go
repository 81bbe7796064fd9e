package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
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
