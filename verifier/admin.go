package verifier

import (
	"context"
	"errors"
	"net/http"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/store"
)

// UserLister lists users, for the admin's MFA overview.
type UserLister interface {
	Users(ctx context.Context) ([]store.User, error)
}

// UserMFA is one user's MFA status in the admin overview.
type UserMFA struct {
	Username string      `json:"username"`
	Methods  UserMethods `json:"methods"`
	// Configured is false when the user has no method to pass MFA with.
	Configured bool `json:"configured"`
}

// adminActor names the admin token holder in the audit log.
const adminActor = "admin"

// RegisterAdminAPI adds the MFA administration routes to mux, each wrapped
// by auth (the admin API's bearer-token check).
func (s *Service) RegisterAdminAPI(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	h := func(f http.HandlerFunc) http.Handler { return auth(f) }
	mux.Handle("GET /api/v1/admin/org/policy", h(s.adminGetPolicy))
	mux.Handle("PUT /api/v1/admin/org/policy", h(s.adminSetPolicy))
	mux.Handle("GET /api/v1/admin/mfa/users", h(s.adminMFAUsers))
	mux.Handle("POST /api/v1/admin/users/{username}/reset-mfa", h(s.adminResetMFA))
	mux.Handle("POST /api/v1/admin/users/{username}/forget-devices", h(s.adminForgetDevices))
}

func (s *Service) adminGetPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.Policy(r.Context())
	if err != nil {
		httpx.ServerError(w, s.log, "admin policy", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (s *Service) adminSetPolicy(w http.ResponseWriter, r *http.Request) {
	var p Policy
	if err := httpx.Decode(w, r, &p); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.SetPolicy(r.Context(), p, adminActor, httpx.ClientIP(r)); errors.Is(err, ErrBadInput) {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	} else if err != nil {
		httpx.ServerError(w, s.log, "admin set policy", err)
		return
	}
	s.adminGetPolicy(w, r)
}

// MFAUsers lists every user's MFA status; only those without a method
// when withoutOnly.
func (s *Service) MFAUsers(ctx context.Context, withoutOnly bool) ([]UserMFA, error) {
	users, err := s.st.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := []UserMFA{}
	for _, u := range users {
		um, err := s.Methods(ctx, u.Username)
		if err != nil {
			return nil, err
		}
		configured := len(um.Available) > 0
		if withoutOnly && configured {
			continue
		}
		out = append(out, UserMFA{Username: u.Username, Methods: um, Configured: configured})
	}
	return out, nil
}

func (s *Service) adminMFAUsers(w http.ResponseWriter, r *http.Request) {
	list, err := s.MFAUsers(r.Context(), r.URL.Query().Get("without") == "1")
	if err != nil {
		httpx.ServerError(w, s.log, "admin mfa users", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) adminResetMFA(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("username")
	if _, _, err := s.st.User(r.Context(), user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			httpx.WriteError(w, http.StatusNotFound, err.Error())
			return
		}
		httpx.ServerError(w, s.log, "admin reset mfa", err)
		return
	}
	if err := s.ResetMFA(r.Context(), user, adminActor, httpx.ClientIP(r)); err != nil {
		httpx.ServerError(w, s.log, "admin reset mfa", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"username": user})
}

// adminForgetDevices ends every session and trusted browser of the user
// and drops the methods they registered.
func (s *Service) adminForgetDevices(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("username")
	if err := s.ForgetDevices(r.Context(), user, adminActor, httpx.ClientIP(r)); err != nil {
		httpx.ServerError(w, s.log, "admin forget devices", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"username": user})
}

// ErrNotAdmin refuses the admin pages to a session that is not an
// administrator's, or that did not pass MFA.
var ErrNotAdmin = errors.New("the admin pages need an administrator account signed in with a second factor")

// AdminSession returns the administrator of a session token. The session
// must have passed MFA (a password-only session is refused even for an
// admin, so turning MFA off needs MFA).
func (s *Service) AdminSession(ctx context.Context, token string) (string, error) {
	t, err := s.st.LookupToken(ctx, store.TokenSession, token)
	if err != nil {
		return "", ErrBadToken
	}
	u, _, err := s.st.User(ctx, t.Username)
	if err != nil {
		return "", err
	}
	if u.Role != "admin" || t.Method == MethodPassword {
		return t.Username, ErrNotAdmin
	}
	return t.Username, nil
}
