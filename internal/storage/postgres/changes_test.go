package postgres

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
)

// waitFor waits up to d for c to receive.
func waitFor(t *testing.T, c <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
	}
}

func signal() (chan struct{}, func()) {
	c := make(chan struct{}, 100)
	return c, func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// An announcement on one node reaches the watchers of the others within a
// second, and this node's at once; other topics stay quiet; a listener
// calls every watcher when it starts listening — the first time (changes
// may have passed while it connected) and once it is back after its
// connection was killed — and hears later announcements.
func TestChangesReachOtherNodes(t *testing.T) {
	u := freshURL(t)
	a, b := openURL(t, u, nil), openURL(t, u, nil)
	ctx := context.Background()
	policyB, fnB := signal()
	radiusB, fnR := signal()
	// A listener calls every watcher once it listens (changes may have
	// passed before): the first watcher of a node, there before its
	// listener starts, says when it is up. A watcher added after that call
	// is not part of it.
	b.Watch(storage.TopicRadiusClients, fnR)
	waitFor(t, radiusB, 5*time.Second, "B's listener is up")
	stop := b.Watch(storage.TopicPolicy, fnB)
	defer stop()
	policyA, fnA := signal()
	a.Watch(storage.TopicPolicy, fnA)
	waitFor(t, policyA, 5*time.Second, "A's listener is up")

	if err := a.Announce(ctx, storage.TopicPolicy); err != nil {
		t.Fatal(err)
	}
	select {
	case <-policyA:
	default:
		t.Fatal("the announcing node's own watcher was not called at once")
	}
	waitFor(t, policyB, 2*time.Second, "policy announced on node A, watched on B") // about a second, with room for a loaded CI
	select {
	case <-radiusB:
		t.Fatal("a policy announcement called the RADIUS watcher")
	case <-time.After(100 * time.Millisecond):
	}

	terminate(t, dbName(t, u)) // every session, the listeners' too
	waitFor(t, radiusB, 5*time.Second, "reconnected listener calls every watcher")
	for len(policyB) > 0 {
		<-policyB
	}
	time.Sleep(100 * time.Millisecond)
	// a's pooled connections were terminated too.
	if err := eventually(func() error { return a.Announce(ctx, storage.TopicPolicy) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, policyB, 2*time.Second, "an announcement after the reconnect")
	stop()
	b.Close() // the listener ends with the store
}

// Nodes sweeping for resends at once claim each pending command exactly
// once.
func TestClaimResendsRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	build := func(v uint64) ([]byte, error) { return []byte{byte(v)}, nil }
	for i := range 20 {
		sn := fmt.Sprintf("BC4-%04d", i)
		if err := n[0].AddCamera(ctx, sn, device.Body4, "pk"); err != nil {
			t.Fatal(err)
		}
		if _, err := n[0].StartOp(ctx, sn, model.OpWipe, nil, nil, build); err != nil {
			t.Fatal(err)
		}
	}
	n[0].AddCamera(ctx, "idle", device.Body4, "pk")
	now := time.Now()
	var mu sync.Mutex
	claimed := map[string]int{}
	together.Run(16, func(i int) {
		got, err := n[i%2].ClaimResends(ctx, now, time.Minute, 3)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		for _, sn := range got {
			claimed[sn]++
		}
		mu.Unlock()
	})
	var twice []string
	for sn, c := range claimed {
		if c > 1 {
			twice = append(twice, sn)
		}
	}
	sort.Strings(twice)
	if len(claimed) != 20 || len(twice) > 0 || claimed["idle"] > 0 {
		t.Fatalf("%d claimed, claimed more than once: %v", len(claimed), twice)
	}
	if again, _ := n[1].ClaimResends(ctx, now.Add(30*time.Second), time.Minute, 100); len(again) != 0 {
		t.Fatalf("claimed again within the interval: %v", again)
	}
	if again, _ := n[1].ClaimResends(ctx, now.Add(2*time.Minute), time.Minute, 100); len(again) != 20 {
		t.Fatalf("%d claimed after the interval, want 20", len(again))
	}
}
