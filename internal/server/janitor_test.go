package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// Wrong passwords for made-up names leave throttle counters behind; once
// nothing is left to remember of them, the janitor deletes them.
func TestJanitorPurgesIdleThrottles(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) { c.Now = clock })
	var keys []string
	for i := range 5 {
		name := fmt.Sprintf("ghost-%d", i)
		testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": name, "password": "not the password"})
		keys = append(keys, "password:acct:"+name)
	}
	count := func() int {
		ths, err := srv.Store.GetThrottles(context.Background(), keys...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, th := range ths {
			if th.Attempts > 0 {
				n++
			}
		}
		return n
	}
	limits := signin.DefaultLimits()
	server.Sweep(srv, context.Background(), limits)
	if n := count(); n != 5 {
		t.Fatalf("%d counters before they expire, want 5", n)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Minute)
	mu.Unlock()
	server.Sweep(srv, context.Background(), limits)
	if n := count(); n != 0 {
		t.Fatalf("%d counters left after the sweep, want 0", n)
	}
}
