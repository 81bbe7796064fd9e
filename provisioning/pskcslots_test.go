package provisioning_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/provisioning/pskc"
)

// heldStore holds every import in ImportCameras until released, so that
// the test knows the imports are running.
type heldStore struct {
	provisioning.PSKCStore
	gate
}

func (h *heldStore) ImportCameras(ctx context.Context, cams []model.SeededCamera, audit []model.AuditEntry) error {
	h.pass()
	return nil
}

func (h *heldStore) Cameras(context.Context) ([]model.Camera, error) { return nil, nil }
func (h *heldStore) Audit(context.Context, model.AuditEntry) error   { return nil }

// TestPSKCSlots: while PSKCSlots imports run, 8 more requests released
// together (imports and exports) are each answered 429 at once, before
// their bodies are decoded; once the imports end, the next is served.
func TestPSKCSlots(t *testing.T) {
	st := &heldStore{gate: newGate()}
	mux := http.NewServeMux()
	provisioning.NewPSKC(st, nil, testenv.Log(t)).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	key := bytes.Repeat([]byte{7}, 16)
	t0, step := int64(0), int64(30)
	doc, err := pskc.Marshal([]pskc.Key{{SerialNo: "SLOT-1", Model: "body4", ID: "SLOT-1", Algorithm: pskc.AlgorithmTOTP, Suite: "HMAC-SHA1",
		Digits: 6, Encoding: "DECIMAL", Secret: bytes.Repeat([]byte{1}, 20), Time: &t0, TimeInterval: &step}}, pskc.WriteOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string, body any) int { // from any goroutine: -1 on a transport error
		data, _ := json.Marshal(body)
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(data))
		if err != nil {
			t.Error(err)
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	imp := provisioning.PSKCImportRequest{PSKC: doc, Key: key}
	checkSlots(t, st.gate, provisioning.PSKCSlots, 8, func() int { return post(provisioning.PSKCImportPath, imp) }, func(i int) int {
		if i%2 == 0 {
			return post(provisioning.PSKCImportPath, imp)
		}
		return post(provisioning.PSKCExportPath, provisioning.PSKCExportRequest{Key: key})
	}, http.StatusCreated)
	go func() { <-st.entered }()
	if c := post(provisioning.PSKCImportPath, imp); c != http.StatusCreated {
		t.Fatalf("an import after the others ended: %d, want 201", c)
	}
}
