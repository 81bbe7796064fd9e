package api

import (
	"errors"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/signin"
)

// adminActor names the admin token holder in the audit log.
const adminActor = "admin"

// RegisterAdmin adds the MFA administration routes to mux, each wrapped
// by auth (the admin API's bearer-token check).
func (a *API) RegisterAdmin(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	h := func(f http.HandlerFunc) http.Handler { return auth(f) }
	mux.Handle("GET /api/v1/admin/org/policy", h(a.adminGetPolicy))
	mux.Handle("PUT /api/v1/admin/org/policy", h(a.adminSetPolicy))
	mux.Handle("GET /api/v1/admin/mfa/users", h(a.adminMFAUsers))
	mux.Handle("POST /api/v1/admin/users/{username}/reset-mfa", h(a.adminResetMFA))
	mux.Handle("POST /api/v1/admin/users/{username}/forget-devices", h(a.adminForgetDevices))
}

func (a *API) adminGetPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := a.svc.Policy(r.Context())
	if err != nil {
		httpx.ServerError(w, a.log, "admin policy", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) adminSetPolicy(w http.ResponseWriter, r *http.Request) {
	var p signin.Policy
	if err := httpx.Decode(w, r, &p); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.svc.SetPolicy(r.Context(), p, adminActor, httpx.ClientIP(r)); errors.Is(err, signin.ErrBadInput) {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	} else if err != nil {
		httpx.ServerError(w, a.log, "admin set policy", err)
		return
	}
	a.adminGetPolicy(w, r)
}

func (a *API) adminMFAUsers(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.MFAUsers(r.Context(), r.URL.Query().Get("without") == "1")
	if err != nil {
		httpx.ServerError(w, a.log, "admin mfa users", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, list)
}

func (a *API) adminResetMFA(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("username")
	if err := a.svc.CheckUser(r.Context(), user); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			httpx.WriteError(w, http.StatusNotFound, err.Error())
			return
		}
		httpx.ServerError(w, a.log, "admin reset mfa", err)
		return
	}
	if err := a.svc.ResetMFA(r.Context(), user, adminActor, httpx.ClientIP(r)); err != nil {
		httpx.ServerError(w, a.log, "admin reset mfa", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"username": user})
}

// adminForgetDevices ends every session and trusted browser of the user
// and drops the methods they registered.
func (a *API) adminForgetDevices(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("username")
	if err := a.svc.ForgetDevices(r.Context(), user, adminActor, httpx.ClientIP(r)); err != nil {
		httpx.ServerError(w, a.log, "admin forget devices", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"username": user})
}
