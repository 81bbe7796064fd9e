package verifier

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/camotp/camotp/internal/httpx"
)

// LoginRequest is the body of POST /api/v1/auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse answers a correct password when MFA applies.
type LoginResponse struct {
	Token             string `json:"token"`
	Authenticator     string `json:"authenticator"`
	AuthenticatorCode string `json:"authenticatorCode"`
}

// VerifyRequest is the body of POST /api/v1/auth/verify.
type VerifyRequest struct {
	Token string `json:"token"`
	Code  string `json:"code"`
}

// VerifyResponse carries the session token.
type VerifyResponse struct {
	SessionToken string `json:"sessionToken"`
}

// CodeErrorResponse is a 401 for a refused code.
type CodeErrorResponse struct {
	Error        string `json:"error"`
	AttemptsLeft int    `json:"attemptsLeft"`
}

// RegisterAPI adds the JSON sign-in API to mux.
func (s *Service) RegisterAPI(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/auth/login", s.apiLogin)
	mux.HandleFunc("POST /api/v1/auth/verify", s.apiVerify)
}

func writeBlocked(w http.ResponseWriter, b *BlockedError) {
	w.Header().Set("Retry-After", strconv.Itoa(int((b.RetryAfter+time.Second-1)/time.Second)))
	httpx.WriteError(w, http.StatusTooManyRequests, b.Error())
}

func (s *Service) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.Login(r.Context(), req.Username, req.Password, httpx.ClientIP(r), "")
	var blocked *BlockedError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, LoginResponse{Token: res.Pending, Authenticator: res.Method})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.Is(err, ErrBadCredentials):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrNoMethod):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		s.log.Error("api login", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}

func (s *Service) apiVerify(w http.ResponseWriter, r *http.Request) {
	var req VerifyRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess, err := s.Verify(r.Context(), req.Token, req.Code, httpx.ClientIP(r))
	var blocked *BlockedError
	var codeErr *CodeError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, VerifyResponse{SessionToken: sess})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.As(err, &codeErr):
		httpx.WriteJSON(w, http.StatusUnauthorized, CodeErrorResponse{Error: codeErr.Error(), AttemptsLeft: codeErr.AttemptsLeft})
	case errors.Is(err, ErrBadToken):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrNoMethod):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		s.log.Error("api verify", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}
