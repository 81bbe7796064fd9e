package storage

import (
	"sync/atomic"
	"testing"

	"github.com/camotp/camotp/internal/together"
)

func TestHub(t *testing.T) {
	var h Hub
	var policy, radius atomic.Int32
	stopP := h.Watch(TopicPolicy, func() { policy.Add(1) })
	h.Watch(TopicRadiusClients, func() { radius.Add(1) })
	h.Fire(TopicPolicy)
	h.Fire("") // everything
	h.Fire("unwatched")
	if policy.Load() != 2 || radius.Load() != 1 {
		t.Fatalf("policy %d radius %d, want 2 and 1", policy.Load(), radius.Load())
	}
	stopP()
	h.Fire(TopicPolicy)
	if policy.Load() != 2 {
		t.Fatalf("a stopped watch was called: %d", policy.Load())
	}
}

// TestHubParallel: watches added, fired and stopped at once (run with
// -race); a watcher may announce from inside its callback.
func TestHubParallel(t *testing.T) {
	var h Hub
	var calls atomic.Int64
	h.Watch(TopicPolicy, func() { calls.Add(1) })
	h.Watch(TopicRadiusClients, func() { h.Fire("nested-ok") })
	together.Run(32, func(int) {
		stop := h.Watch(TopicPolicy, func() {})
		h.Fire(TopicPolicy)
		h.Fire(TopicRadiusClients)
		stop()
	})
	if calls.Load() != 32 {
		t.Fatalf("%d calls of the first watcher, want 32", calls.Load())
	}
}
