package api_test

import (
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/signin"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// burstSize is how many requests each burst fires at once.
const burstSize = 50

// burst runs n requests released together and counts their statuses.
func burst(n int, req func(i int) int) map[int]int {
	statuses := make([]int, n)
	together.Run(n, func(i int) { statuses[i] = req(i) })
	out := map[int]int{}
	for _, s := range statuses {
		out[s]++
	}
	return out
}

// poster sends JSON requests over many connections at once, optionally
// through a "proxy" (X-Forwarded-For from a trusted peer).
type poster struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newPoster(t *testing.T, srv *server.Server) *poster {
	tr := &http.Transport{MaxIdleConnsPerHost: burstSize}
	t.Cleanup(tr.CloseIdleConnections)
	return &poster{t: t, base: "http://" + srv.HTTPAddr(), client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

func (p *poster) post(path, xff string, body any) int {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", p.base+path, bytes.NewReader(b))
	if err != nil {
		p.t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		p.t.Error("429 without Retry-After")
	}
	return resp.StatusCode
}

// auditCount counts user's audit rows of action with result.
func auditCount(t *testing.T, f *testenv.Fleet, user, action, result string) int {
	t.Helper()
	log, err := f.Srv.Store.AuditLog(context.Background(), user, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Action == action && e.Result == result {
			n++
		}
	}
	return n
}

// One account, one source, 50 wrong codes at once: three are evaluated,
// the rest refused with 429 before any evaluation; the pair is blocked and
// the account's backoff is untouched.
func TestBurstWrongCodes(t *testing.T) {
	f := testenv.NewFleet(t)
	tok := f.Pending(t, "alice")
	code := f.WrongCode(t, "alice")
	p := newPoster(t, f.Srv)
	got := burst(burstSize, func(int) int {
		return p.post("/api/v1/auth/verify", "", map[string]string{"token": tok, "code": code})
	})
	evaluated := auditCount(t, f, "alice", "login.mfa", "invalid")
	t.Logf("burst of %d wrong codes: statuses %v, %d evaluated", burstSize, got, evaluated)
	if evaluated != 3 || got[401]+got[429] != burstSize || got[401] > 3 {
		t.Fatalf("statuses %v, %d codes evaluated; want at most 3 evaluated (401 or the 429 of the one that blocks) and the rest 429", got, evaluated)
	}
	ths, err := f.Srv.Store.GetThrottles(t.Context(), "otp:acct:alice")
	if err != nil {
		t.Fatal(err)
	}
	if ths[0].Level != 0 || !ths[0].BlockedUntil.IsZero() || ths[0].Attempts != 3 {
		t.Fatalf("account counter after one burst: %+v, want 3 attempts, no block, level 0", ths[0])
	}
	// Still blocked for the right code, from this source.
	if status, _ := f.Verify(t, tok, testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != 429 {
		t.Fatalf("right code after the burst: %d, want 429", status)
	}
}

// Wrong passwords at once: from one source three are hashed and checked;
// from 50 sources (behind a trusted proxy) the account ceiling admits ten,
// and the account backoff rises exactly one level.
func TestBurstWrongPasswords(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		// What is counted here is the throttle, not the hashing budget: on
		// a loaded CI machine ten hashes at once may wait past the
		// default 2 s and answer 503 (TestParallelLoginsMemoryBounded tests that).
		vc := signin.DefaultConfig()
		vc.HashWait = 2 * time.Minute
		c.SignIn = &vc
	})
	p := newPoster(t, f.Srv)
	got := burst(burstSize, func(int) int {
		return p.post("/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "wrong password"})
	})
	evaluated := auditCount(t, f, "alice", "login.password", "failed")
	t.Logf("burst of %d wrong passwords from one source: statuses %v, %d evaluated", burstSize, got, evaluated)
	if evaluated != 3 || got[401]+got[429] != burstSize || got[429] < burstSize-3 {
		t.Fatalf("statuses %v, %d evaluated; want 3 evaluated, the rest 429", got, evaluated)
	}
	got = burst(burstSize, func(i int) int {
		return p.post("/api/v1/auth/login", fmt.Sprintf("198.51.100.%d", i+1), map[string]string{"username": "bob", "password": "wrong password"})
	})
	evaluated = auditCount(t, f, "bob", "login.password", "failed")
	t.Logf("burst of %d wrong passwords from %d sources: statuses %v, %d evaluated", burstSize, burstSize, got, evaluated)
	if evaluated != 10 || got[401]+got[429] != burstSize {
		t.Fatalf("statuses %v, %d evaluated; want the account ceiling (10) evaluated, the rest 429", got, evaluated)
	}
	ths, err := f.Srv.Store.GetThrottles(t.Context(), "password:acct:bob")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(ths[0].BlockedUntil); ths[0].Level != 1 || left <= 0 || left > time.Minute {
		t.Fatalf("account counter after one burst: %+v, want level 1, blocked for at most 1 minute", ths[0])
	}
	// The audit rows carry the addresses the proxy saw.
	log, _ := f.Srv.Store.AuditLog(t.Context(), "bob", 100)
	for _, e := range log {
		if e.Action == "login.password" && !netip.MustParsePrefix("198.51.100.0/24").Contains(netip.MustParseAddr(e.SourceIP)) {
			t.Fatalf("audit source %q, want the forwarded client address", e.SourceIP)
		}
	}
}

// One host flooding logins for made-up names (no per-account counter
// stops those) gets at most its share of the password checks; an officer
// at another address signs in meanwhile without waiting behind the flood.
func TestLoginFloodFromOneSourceLeavesRoom(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	p := newPoster(t, f.Srv)
	officer := make(chan int, 1)
	got := burst(burstSize+1, func(i int) int {
		if i == burstSize {
			time.Sleep(20 * time.Millisecond) // once the flood holds what it can
			status := p.post("/api/v1/auth/login", "203.0.113.50", map[string]string{"username": "alice", "password": "pw-alice-long"})
			officer <- status
			return status
		}
		return p.post("/api/v1/auth/login", "198.51.100.66", map[string]string{"username": fmt.Sprintf("ghost-%d", i), "password": "not the password"})
	})
	t.Logf("flood of %d from one source plus one officer: statuses %v", burstSize, got)
	if status := <-officer; status != 200 {
		t.Fatalf("the officer's sign-in during the flood: %d, want 200", status)
	}
	if got[503] == 0 {
		t.Fatalf("statuses %v: the flooding source was never refused its share", got)
	}
}
