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
	entered chan struct{}
	release chan struct{}
}

func (h *heldAudit) VerifyAudit(context.Context) (model.AuditVerdict, error) {
	h.entered <- struct{}{}
	<-h.release
	return model.AuditVerdict{Chains: 1}, nil
}

func (h *heldAudit) Audit(context.Context, model.AuditEntry) error { return nil }

// TestVerifySlots: a chain check reads the whole audit log, as an export
// does, and shares the export's slots: while they are taken, 6 more
// checks released together are each answered 429 at once.
func TestVerifySlots(t *testing.T) {
	st := &heldAudit{entered: make(chan struct{}), release: make(chan struct{})}
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
	held := make(chan int, auditexport.MaxAtOnce)
	for range auditexport.MaxAtOnce {
		go func() { held <- verify() }()
		<-st.entered
	}
	codes := make([]int, 6)
	together.Run(len(codes), func(i int) { codes[i] = verify() })
	for i, c := range codes {
		if c != http.StatusTooManyRequests {
			t.Errorf("check %d while the slots are taken: %d, want 429", i, c)
		}
	}
	close(st.release)
	for range auditexport.MaxAtOnce {
		if c := <-held; c != http.StatusOK {
			t.Errorf("a held check ended %d, want 200", c)
		}
	}
}
