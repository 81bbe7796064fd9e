package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ClientStore keeps the RADIUS clients and the audit log; a storage.Store
// satisfies it.
type ClientStore interface {
	Clients
	AddRadiusClient(ctx context.Context, c model.RadiusClient) error
	RemoveRadiusClient(ctx context.Context, name string) error
	Audit(ctx context.Context, e model.AuditEntry) error
}

// ClientInfo is a RADIUS client as the admin API shows it. Secret is set
// only in the answer that creates the client: it is shown once.
type ClientInfo struct {
	Name      string    `json:"name"`
	CIDR      string    `json:"cidr"`
	CreatedAt time.Time `json:"createdAt"`
	Secret    string    `json:"secret,omitempty"`
}

// AddClientRequest registers a client.
type AddClientRequest struct {
	Name string `json:"name"`
	// CIDR is the client's source address range; a bare address is one
	// host.
	CIDR string `json:"cidr"`
}

// NewSecret makes a shared secret: 26 characters of the base32 alphabet
// (A–Z, 2–7; 128 random bits). Letters and digits only: every NAS form
// and command line takes it as typed — a base64url secret could start
// with "-", which radclient and other getopt tools read as an option.
func NewSecret() string {
	return rand.Text()
}

// ParseCIDR reads a client's address range: a CIDR, or an address for one
// host.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), max(bits-96, 0)
		}
		return netip.PrefixFrom(a, bits).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validName: 1-64 letters, digits or ._-
func validName(n string) bool {
	if len(n) < 1 || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c)) {
			return false
		}
	}
	return true
}

// adminActor names the admin token holder in the audit log.
const adminActor = "admin"

// RegisterAdminAPI adds the RADIUS client routes to mux, each wrapped by
// auth (the admin API's bearer-token check). changed, when not nil, is
// called after a client was added or removed (the running server's
// InvalidateClients). The routes work whether or not RADIUS is served, so
// clients can be set up before it is turned on.
func RegisterAdminAPI(mux *http.ServeMux, auth func(http.Handler) http.Handler, st ClientStore, changed func(), log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	if changed == nil {
		changed = func() {}
	}
	mux.Handle("GET /api/v1/admin/radius/clients", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := st.RadiusClients(r.Context())
		if err != nil {
			httpx.ServerError(w, log, "list radius clients", err)
			return
		}
		out := []ClientInfo{}
		for _, c := range list {
			out = append(out, ClientInfo{Name: c.Name, CIDR: c.CIDR.String(), CreatedAt: c.CreatedAt})
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})))
	mux.Handle("POST /api/v1/admin/radius/clients", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req AddClientRequest
		if err := httpx.Decode(w, r, &req); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if !validName(req.Name) {
			httpx.WriteError(w, http.StatusBadRequest, "name must be 1-64 letters, digits or ._-")
			return
		}
		cidr, err := ParseCIDR(req.CIDR)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "cidr: "+err.Error())
			return
		}
		secret := NewSecret()
		c := model.RadiusClient{Name: req.Name, CIDR: cidr, Secret: []byte(secret)}
		err = st.AddRadiusClient(r.Context(), c)
		st.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "radius.client.add", Subject: req.Name,
			Result: model.Result(err), SourceIP: httpx.ClientIP(r), Detail: cidr.String()})
		switch {
		case errors.Is(err, storage.ErrExists):
			httpx.WriteError(w, http.StatusConflict, "a radius client with this name or cidr exists")
			return
		case err != nil:
			httpx.ServerError(w, log, "add radius client", err)
			return
		}
		changed()
		httpx.WriteJSON(w, http.StatusCreated, ClientInfo{Name: c.Name, CIDR: cidr.String(), CreatedAt: time.Now().UTC(), Secret: secret})
	})))
	mux.Handle("DELETE /api/v1/admin/radius/clients/{name}", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := st.RemoveRadiusClient(r.Context(), name)
		st.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "radius.client.remove", Subject: name,
			Result: model.Result(err), SourceIP: httpx.ClientIP(r)})
		switch {
		case errors.Is(err, storage.ErrNotFound):
			httpx.WriteError(w, http.StatusNotFound, "no radius client "+name)
			return
		case err != nil:
			httpx.ServerError(w, log, "remove radius client", err)
			return
		}
		changed()
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"name": name})
	})))
}
