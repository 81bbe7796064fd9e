package provisioning_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/camotp/camotp/internal/auditexport"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
)

// heldAudit holds every chain check in VerifyAudit until released.
type heldAudit struct {
	provisioning.AdminStore
	gate
}

func (h *heldAudit) VerifyAudit(context.Context) (model.AuditVerdict, error) {
	h.pass()
	return model.AuditVerdict{Chains: 1}, nil
}

func (h *heldAudit) Audit(context.Context, model.AuditEntry) error { return nil }

// TestVerifySlots: a chain check reads the whole audit log, as an export
// does, and shares the export's slots: while they are taken, 6 more
// checks released together are each answered 429 at once.
func TestVerifySlots(t *testing.T) {
	st := &heldAudit{gate: newGate()}
	mux := http.NewServeMux()
	provisioning.NewAdminAPI(st, nil, "token").Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	verify := func() int { // from any goroutine: -1 on a transport error
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/admin/audit/verify", nil)
		req.Header.Set("Authorization", "Bearer token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	checkSlots(t, st.gate, auditexport.MaxAtOnce, 6, verify, func(int) int { return verify() }, http.StatusOK)
}

// gate holds the calls of a store method until released: entered says a
// call got there.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() gate { return gate{entered: make(chan struct{}), release: make(chan struct{})} }

// pass is what the held method calls: it waits for release.
func (g gate) pass() {
	g.entered <- struct{}{}
	<-g.release
}

// checkSlots takes all n slots with hold (each call waits in the store
// at g), fires burst(i) for i < m from goroutines released together and
// wants each answered 429 at once, then releases the held calls and wants
// each answered done.
func checkSlots(t *testing.T, g gate, n, m int, hold func() int, burst func(i int) int, done int) {
	t.Helper()
	held := make(chan int, n)
	for range n {
		go func() { held <- hold() }()
		<-g.entered
	}
	codes := make([]int, m)
	together.Run(m, func(i int) { codes[i] = burst(i) })
	for i, c := range codes {
		if c != http.StatusTooManyRequests {
			t.Errorf("request %d while the %d slots are taken: %d, want 429", i, n, c)
		}
	}
	close(g.release)
	for range n {
		if c := <-held; c != done {
			t.Errorf("a held request ended %d, want %d", c, done)
		}
	}
}
