package signin

import (
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/postgres"
	"github.com/camotp/camotp/internal/testenv/pgtest"
)

// nodePairs are the ways two nodes share a database: one SQLite store
// (one process owns the file, two services on it) and, where PostgreSQL
// is reachable, two stores on one database.
func nodePairs(t *testing.T) map[string][2]storage.Store {
	st := newStore(t, t.TempDir(), nil)
	pairs := map[string][2]storage.Store{"sqlite": {st, st}}
	if pgtest.Available() {
		url := pgtest.URL(t)
		key, err := masterkey.New(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		var pair [2]storage.Store
		for i := range pair {
			pg, err := postgres.Open(t.Context(), url, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pg.Close() })
			pair[i] = pg
		}
		pairs["postgres"] = pair
	}
	return pairs
}

// TestPolicyChangeReachesOtherNodes: a policy saved through node A is what
// node B answers next, although B had it cached.
func TestPolicyChangeReachesOtherNodes(t *testing.T) {
	for name, pair := range nodePairs(t) {
		t.Run(name, func(t *testing.T) {
			a, err := NewService(pair[0], DefaultConfig(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewService(pair[1], DefaultConfig(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			before, err := b.Policy(t.Context()) // cached on B
			if err != nil {
				t.Fatal(err)
			}
			want := Policy{RequireMFA: !before.RequireMFA, Methods: []string{MethodBodycam, MethodApp}}
			if err := a.SetPolicy(t.Context(), want, "admin", "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second) // the promise: within 1 s
			for {
				got, err := b.Policy(t.Context())
				if err == nil && got.RequireMFA == want.RequireMFA && len(got.Methods) == 2 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("node B still answers %+v (%v) a second after node A saved %+v", got, err, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
