package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// fleetCases are what several nodes sharing one database agree on:
// camera presence, the sweep of pending commands, change announcements.
func fleetCases() []testCase {
	return []testCase{
		{"PresenceSettlesOnTheNewest", func(t *testing.T, e *env) {
			for _, sn := range []string{"CAM-1", "CAM-2"} {
				e.addCamera(t, sn)
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-1"); c.Online {
				t.Fatal("a new camera is online")
			}
			steps := []struct {
				serial string
				online bool
				at     time.Duration
				want   int
			}{
				{"CAM-1", true, 10 * time.Millisecond, 1},
				{"CAM-1", false, 5 * time.Millisecond, 1}, // older: ignored
				{"CAM-2", true, 20 * time.Millisecond, 2},
				{"CAM-1", false, 30 * time.Millisecond, 1},
				{"CAM-1", true, 25 * time.Millisecond, 1}, // older: ignored
				{"CAM-9", true, 40 * time.Millisecond, 1}, // not registered: ignored
			}
			for i, st := range steps {
				must(t, e.s.SetPresence(e.ctx, st.serial, st.online, T0.Add(st.at)), "set presence")
				if n, err := e.s.OnlineCount(e.ctx); err != nil || n != st.want {
					t.Fatalf("step %d: %d online (%v), want %d", i, n, err, st.want)
				}
			}
			cs, err := e.s.Cameras(e.ctx)
			must(t, err, "list")
			if len(cs) != 2 || cs[0].Online || !cs[1].Online {
				t.Fatalf("cameras %+v, want CAM-1 offline, CAM-2 online", cs)
			}
			// CAM-2 came online at +20ms: clearing as of +15ms keeps it.
			must(t, e.s.ClearPresence(e.ctx, T0.Add(15*time.Millisecond)), "clear")
			if c, _ := e.s.Camera(e.ctx, "CAM-2"); !c.Online {
				t.Fatal("an older clear took a newer presence")
			}
			must(t, e.s.ClearPresence(e.ctx, T0.Add(50*time.Millisecond)), "clear")
			if n, _ := e.s.OnlineCount(e.ctx); n != 0 {
				t.Fatalf("%d online after clear, want 0", n)
			}
			// An event older than the clear is older than what is known,
			// for the cameras that were online and for the others alike.
			for _, sn := range []string{"CAM-1", "CAM-2"} {
				must(t, e.s.SetPresence(e.ctx, sn, true, T0.Add(45*time.Millisecond)), "late event")
				if n, _ := e.s.OnlineCount(e.ctx); n != 0 {
					t.Fatalf("%s online after an event older than the clear", sn)
				}
			}
		}},
		{"ClaimResends", func(t *testing.T, e *env) {
			s := testSeed(1)
			for _, sn := range []string{"CAM-1", "CAM-2", "CAM-3"} {
				e.addCamera(t, sn)
				e.startOp(t, sn, model.OpProvision, &s)
			}
			e.provision(t, "DONE-1", testSeed(2)) // nothing pending
			every := 30 * time.Second
			first, err := e.s.ClaimResends(e.ctx, T0, every, 2)
			must(t, err, "claim")
			second, err := e.s.ClaimResends(e.ctx, T0, every, 2)
			must(t, err, "claim")
			all := slices.Sorted(slices.Values(append(slices.Clone(first), second...)))
			if len(first) != 2 || !slices.Equal(all, []string{"CAM-1", "CAM-2", "CAM-3"}) {
				t.Fatalf("claims %v then %v, want at most 2, then the rest, each once", first, second)
			}
			if got, err := e.s.ClaimResends(e.ctx, T0.Add(every-time.Millisecond), every, 10); err != nil || len(got) != 0 {
				t.Fatalf("claimed again before every passed: %v %v", got, err)
			}
			// A completed operation is not resent.
			p, err := e.s.Pending(e.ctx, "CAM-2")
			must(t, err, "pending")
			_, err = e.s.CompleteOp(e.ctx, "CAM-2", p.Version)
			must(t, err, "complete")
			got, err := e.s.ClaimResends(e.ctx, T0.Add(every), every, 10)
			if err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), []string{"CAM-1", "CAM-3"}) {
				t.Fatalf("due after every: %v %v, want CAM-1 and CAM-3", got, err)
			}
		}},
		{"AnnounceReachesWatchers", func(t *testing.T, e *env) {
			// Watchers may also be called when the node may have missed
			// a change, so only the calls that must happen are counted.
			calls := make(chan string, 16)
			for _, w := range []string{"policy-1", "policy-2"} {
				stop := e.s.Watch(storage.TopicPolicy, func() {
					select {
					case calls <- w:
					default:
					}
				})
				t.Cleanup(stop)
			}
			must(t, e.s.Announce(e.ctx, storage.TopicPolicy), "announce")
			seen := map[string]bool{}
			timer := time.NewTimer(30 * time.Second) // "within about a second"; generous for a loaded machine
			defer timer.Stop()
			for len(seen) < 2 {
				select {
				case w := <-calls:
					seen[w] = true
				case <-timer.C:
					t.Fatalf("watchers called: %v, want both", seen)
				}
			}
			must(t, e.s.Announce(e.ctx, fmt.Sprintf("nobody-watches-%d", 1)), "announce an unwatched topic")
		}},
	}
}
