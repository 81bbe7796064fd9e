package rollover

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
)

// PolicyPath is the admin API path of the rollover policy: GET answers
// the policy and the fleet's counts (Status), PUT sets the policy (a
// Policy; the zero one turns rotation off) and answers the same.
const PolicyPath = "/api/v1/admin/org/rotation"

// AdminStore is what the admin API writes.
type AdminStore interface {
	SetSetting(ctx context.Context, key, value string) error
	Audit(ctx context.Context, e model.AuditEntry) error
}

// RegisterAdmin serves PolicyPath on mux behind auth (the admin token).
func (s *Scheduler) RegisterAdmin(mux *http.ServeMux, auth func(http.Handler) http.Handler, st AdminStore, log *slog.Logger) {
	get := func(w http.ResponseWriter, r *http.Request) {
		status, err := s.Status(r.Context())
		if err != nil {
			httpx.ServerError(w, log, "rotation status", err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, status)
	}
	mux.Handle("GET "+PolicyPath, auth(http.HandlerFunc(get)))
	mux.Handle("PUT "+PolicyPath, auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Policy
		if err := httpx.DecodeLimit(w, r, &p, 4<<10); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := p.Validate(); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		err := st.SetSetting(r.Context(), SettingKey, p.Encode())
		if aerr := st.Audit(r.Context(), model.AuditEntry{Actor: "admin", Action: "org.rotation", Subject: "org",
			Result: model.Result(err), SourceIP: httpx.ClientIP(r), Detail: p.String()}); aerr != nil {
			log.Error("audit write failed", "action", "org.rotation", "err", aerr)
		}
		if err != nil {
			httpx.ServerError(w, log, "set rotation policy", err)
			return
		}
		get(w, r)
	})))
}
