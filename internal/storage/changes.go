package storage

import (
	"context"
	"sync"
)

// Topics announced through Changes: what a node may cache.
const (
	// TopicPolicy is the organisation policy (signin caches it).
	TopicPolicy = "policy"
	// TopicRadiusClients is the RADIUS client list (radius caches it).
	TopicRadiusClients = "radius-clients"
)

// Changes tells every node sharing the database that shared data changed,
// so no node answers from a stale cache: announced after the change is
// committed, seen by the other nodes within about a second.
type Changes interface {
	// Announce tells every node, this one included, that topic changed.
	Announce(ctx context.Context, topic string) error
	// Watch calls fn whenever topic changes, and whenever this node may
	// have missed a change (its link to the database was lost). fn runs on
	// a goroutine of the store's and must not block for long. stop ends
	// the watch.
	Watch(topic string, fn func()) (stop func())
}

// Hub delivers announcements within one process: the whole of Changes for
// a store that one process owns (SQLite), and the local fan-out of a
// shared one (PostgreSQL's notifications arrive once per node).
type Hub struct {
	mu      sync.Mutex
	next    int
	watches map[string]map[int]func()
}

// Fire calls every watcher of topic ("" calls every watcher of every
// topic: a node that may have missed changes reloads everything).
func (h *Hub) Fire(topic string) {
	h.mu.Lock()
	var fns []func()
	for t, ws := range h.watches {
		if topic == "" || t == topic {
			for _, fn := range ws {
				fns = append(fns, fn)
			}
		}
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Watch registers fn for topic; stop removes it.
func (h *Hub) Watch(topic string, fn func()) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watches == nil {
		h.watches = map[string]map[int]func(){}
	}
	if h.watches[topic] == nil {
		h.watches[topic] = map[int]func(){}
	}
	id := h.next
	h.next++
	h.watches[topic][id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.watches[topic], id)
	}
}
