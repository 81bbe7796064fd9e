package server_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
	"github.com/camotp/camotp/internal/together"
)

// twoNodes is a fleet served by node A with a second node B on the same
// PostgreSQL database (each with its own connection pool, as two hosts).
func twoNodes(t *testing.T) (*testenv.Fleet, *server.Server) {
	t.Helper()
	db := pgtest.URL(t)
	f := testenv.NewFleet(t, func(c *server.Config) { c.DB = db })
	return f, f.Node(t)
}

func verifyOn(t *testing.T, srv *server.Server, token, code string) int {
	t.Helper()
	status, _ := testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": token, "code": code})
	return status
}

// TestNodesShareSignIn: a user logs in on node A and verifies on node B;
// a code accepted on one node is refused on the other (the replay record
// is shared, unlike FreeIPA replicas during replication lag).
func TestNodesShareSignIn(t *testing.T) {
	f, b := twoNodes(t)
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	if status := verifyOn(t, b, f.Pending(t, "alice"), code); status != http.StatusOK {
		t.Fatalf("log in on A, verify on B: %d", status)
	}
	if status := verifyOn(t, f.Srv, f.Pending(t, "alice"), code); status != http.StatusUnauthorized {
		t.Fatalf("the code B accepted, on A: %d, want 401", status)
	}
	// Both nodes at once with one fresh code: exactly one wins.
	f.Clock.Add(30 * time.Second)
	code = testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	tokens := []string{f.Pending(t, "alice"), f.Pending(t, "alice")}
	var ok atomic.Int32
	together.Run(2, func(i int) {
		if verifyOn(t, []*server.Server{f.Srv, b}[i], tokens[i], code) == http.StatusOK {
			ok.Add(1)
		}
	})
	if ok.Load() != 1 {
		t.Fatalf("one code on two nodes at once: %d accepted, want 1", ok.Load())
	}
}

// TestNodesShareThrottles: 50 wrong codes split across the two nodes at
// once are throttled as on one node: three evaluated, the rest 429.
func TestNodesShareThrottles(t *testing.T) {
	f, b := twoNodes(t)
	tok := f.Pending(t, "alice")
	wrong := f.WrongCode(t, "alice")
	statuses := make([]int, 50)
	together.Run(len(statuses), func(i int) {
		statuses[i] = verifyOn(t, []*server.Server{f.Srv, b}[i%2], tok, wrong)
	})
	got := map[int]int{}
	for _, s := range statuses {
		got[s]++
	}
	evaluated := 0
	rows, err := f.Srv.Store.AuditLog(t.Context(), "alice", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rows {
		if e.Action == "login.mfa" && e.Result == "invalid" {
			evaluated++
		}
	}
	t.Logf("50 wrong codes over two nodes: statuses %v, %d evaluated", got, evaluated)
	if evaluated != 3 || got[401]+got[429] != len(statuses) {
		t.Fatalf("statuses %v, %d evaluated; want 3 evaluated and the rest 429", got, evaluated)
	}
}

// TestNodesSharePolicy: an organisation policy saved on node A is what
// node B enforces within a second, although B had it cached.
func TestNodesSharePolicy(t *testing.T) {
	f, b := twoNodes(t)
	if status, _ := testenv.API(t, b, "", "POST", "/api/v1/auth/login", map[string]string{"username": "dave", "password": "pw-dave-long"}); status != http.StatusOK {
		t.Fatalf("dave (no method) under the default policy on B: %d", status)
	}
	f.SetPolicy(t, true, "bodycam")
	deadline := time.Now().Add(time.Second)
	for {
		status, body := testenv.API(t, b, "", "POST", "/api/v1/auth/login", map[string]string{"username": "dave", "password": "pw-dave-long"})
		if status == http.StatusForbidden || body["authenticator"] == "setup" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("B a second after A required MFA: dave gets %d %v", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
