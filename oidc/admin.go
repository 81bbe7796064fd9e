package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// AdminStore is what client and key administration needs.
type AdminStore interface {
	ClientStore
	AddOIDCKey(ctx context.Context, k model.OIDCKey) error
	Audit(ctx context.Context, e model.AuditEntry) error
}

// Admin serves the OpenID Connect administration routes of the admin API
// (clients and signing keys). It works whether or not the provider runs,
// so clients can be registered before it is turned on.
type Admin struct {
	St  AdminStore
	Log *slog.Logger
}

// ClientRequest registers a client.
type ClientRequest struct {
	ID           string   `json:"id"`
	RedirectURIs []string `json:"redirectUris"`
	Public       bool     `json:"public"`
}

// ClientResponse is a registered client; Secret is set once, in the answer
// to the registration of a confidential client.
type ClientResponse struct {
	model.OIDCClient
	Secret string `json:"secret,omitempty"`
}

// KeyRequest asks for a new signing key.
type KeyRequest struct {
	Alg string `json:"alg"` // AlgRS256 (default) or AlgES256
}

// KeyResponse names the new signing key.
type KeyResponse struct {
	ID  string `json:"kid"`
	Alg string `json:"alg"`
}

// Register adds the routes to mux, each wrapped by auth (the admin API's
// bearer-token check).
func (a *Admin) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/admin/oidc/clients", auth(http.HandlerFunc(a.addClient)))
	mux.Handle("GET /api/v1/admin/oidc/clients", auth(http.HandlerFunc(a.listClients)))
	mux.Handle("DELETE /api/v1/admin/oidc/clients/{id}", auth(http.HandlerFunc(a.removeClient)))
	mux.Handle("POST /api/v1/admin/oidc/keys", auth(http.HandlerFunc(a.rotateKey)))
}

func (a *Admin) audit(r *http.Request, action, subject string, err error, detail string) {
	a.St.Audit(context.WithoutCancel(r.Context()), model.AuditEntry{Actor: "admin", Action: action, Subject: subject,
		Result: model.Result(err), SourceIP: httpx.ClientIP(r), Detail: detail})
}

func (a *Admin) addClient(w http.ResponseWriter, r *http.Request) {
	var req ClientRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, secret, err := NewClient(req.ID, req.RedirectURIs, req.Public)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = a.St.AddOIDCClient(r.Context(), c)
	a.audit(r, "oidc.client.add", c.ID, err, "")
	switch {
	case errors.Is(err, storage.ErrExists):
		httpx.WriteError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		httpx.ServerError(w, a.Log, "add oidc client", err)
		return
	}
	if stored, err := a.St.OIDCClient(r.Context(), c.ID); err == nil {
		c = stored
	}
	httpx.WriteJSON(w, http.StatusCreated, ClientResponse{OIDCClient: c, Secret: secret})
}

func (a *Admin) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := a.St.OIDCClients(r.Context())
	if err != nil {
		httpx.ServerError(w, a.Log, "list oidc clients", err)
		return
	}
	if cs == nil {
		cs = []model.OIDCClient{}
	}
	httpx.WriteJSON(w, http.StatusOK, cs)
}

func (a *Admin) removeClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := a.St.RemoveOIDCClient(r.Context(), id)
	a.audit(r, "oidc.client.remove", id, err, "")
	switch {
	case errors.Is(err, storage.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, err.Error())
	case err != nil:
		httpx.ServerError(w, a.Log, "remove oidc client", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *Admin) rotateKey(w http.ResponseWriter, r *http.Request) {
	var req KeyRequest
	if r.ContentLength != 0 {
		if err := httpx.Decode(w, r, &req); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.Alg == "" {
		req.Alg = AlgRS256
	}
	k, err := NewKey(req.Alg)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = a.St.AddOIDCKey(r.Context(), k)
	a.audit(r, "oidc.key.rotate", k.ID, err, k.Alg)
	if err != nil {
		httpx.ServerError(w, a.Log, "rotate oidc key", err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, KeyResponse{ID: k.ID, Alg: k.Alg})
}
