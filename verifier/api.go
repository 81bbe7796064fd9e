package verifier

import (
	"errors"
	"net/http"
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
	Token string `json:"token"`
	// Authenticator is the method the challenge opens with ("setup" when
	// the user must set up a method first: see SetupMethods).
	Authenticator     string `json:"authenticator"`
	AuthenticatorCode string `json:"authenticatorCode"`
	// Methods are every method the user can verify with now.
	Methods []string `json:"methods"`
	// SetupMethods are the methods the user can set up.
	SetupMethods []string `json:"setupMethods,omitempty"`
	// SessionToken is set instead of Token when no MFA step applies.
	SessionToken string `json:"sessionToken,omitempty"`
}

// VerifyRequest is the body of POST /api/v1/auth/verify.
type VerifyRequest struct {
	Token string `json:"token"`
	Code  string `json:"code"`
	// Method is one of the login response's methods ("" for authenticator).
	Method string `json:"method,omitempty"`
}

// SetupRequest is the body of POST /api/v1/auth/setup/app (Token only) and
// /api/v1/auth/setup/confirm.
type SetupRequest struct {
	Token string `json:"token"`
	Code  string `json:"code,omitempty"`
	// Method being confirmed: "app" (default) or "phone".
	Method string `json:"method,omitempty"`
	// Phone to confirm (POST /api/v1/auth/setup/phone), E.164.
	Phone string `json:"phone,omitempty"`
}

// SendRequest is the body of POST /api/v1/auth/send.
type SendRequest struct {
	Token  string `json:"token"`
	Method string `json:"method"`
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
	mux.HandleFunc("POST /api/v1/auth/setup/app", s.apiSetupApp)
	mux.HandleFunc("POST /api/v1/auth/setup/phone", s.apiSetupPhone)
	mux.HandleFunc("POST /api/v1/auth/setup/confirm", s.apiSetupConfirm)
	mux.HandleFunc("POST /api/v1/auth/send", s.apiSend)
}

func writeBlocked(w http.ResponseWriter, b *BlockedError) {
	httpx.SetRetryAfter(w, b.RetryAfter)
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
	case err == nil && res.Session != "":
		httpx.WriteJSON(w, http.StatusOK, LoginResponse{SessionToken: res.Session, Methods: []string{}})
	case err == nil:
		resp := LoginResponse{Token: res.Pending, Authenticator: res.Method, Methods: res.Methods.Available}
		if resp.Methods == nil {
			resp.Methods = []string{}
		}
		if res.Method == MethodSetup {
			resp.SetupMethods = res.Methods.CanSetUp
		}
		httpx.WriteJSON(w, http.StatusOK, resp)
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.Is(err, ErrBadCredentials):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrNoMethod):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, s.log, "api login", err)
	}
}

func (s *Service) apiVerify(w http.ResponseWriter, r *http.Request) {
	var req VerifyRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess, err := s.VerifyMethod(r.Context(), req.Token, req.Method, req.Code, httpx.ClientIP(r))
	s.writeSession(w, sess, err, "api verify")
}

// writeSession answers a code check: the session token, or the error.
func (s *Service) writeSession(w http.ResponseWriter, sess string, err error, what string) {
	var setup *SetupNeeded
	if errors.As(err, &setup) {
		httpx.WriteJSON(w, http.StatusOK, LoginResponse{Token: setup.Pending, Authenticator: MethodSetup, Methods: []string{}, SetupMethods: setup.Methods})
		return
	}
	var blocked *BlockedError
	var codeErr *CodeError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, VerifyResponse{SessionToken: sess})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.As(err, &codeErr):
		httpx.WriteJSON(w, http.StatusUnauthorized, CodeErrorResponse{Error: codeErr.Error(), AttemptsLeft: codeErr.AttemptsLeft})
	case errors.Is(err, ErrBadToken), errors.Is(err, ErrNoEnrolment):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrNoMethod), errors.Is(err, ErrNotEnabled), errors.Is(err, ErrSetupRequired):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, s.log, what, err)
	}
}

// SetupAppResponse is a new authenticator-app key.
type SetupAppResponse struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	// QRPNG is the QR code of URI, a base64 PNG.
	QRPNG []byte `json:"qrPng"`
}

func (s *Service) apiSetupApp(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	enr, err := s.SetupApp(r.Context(), req.Token)
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, SetupAppResponse{Secret: enr.Secret, URI: enr.URI, QRPNG: enr.QRPNG})
	case errors.Is(err, ErrBadToken):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrNotEnabled):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, s.log, "api setup app", err)
	}
}

func (s *Service) apiSetupConfirm(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess, err := s.FinishSetup(r.Context(), req.Token, req.Method, req.Code, httpx.ClientIP(r))
	s.writeSession(w, sess, err, "api setup confirm")
}

func (s *Service) apiSetupPhone(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	err := s.SetupPhone(r.Context(), req.Token, req.Phone, httpx.ClientIP(r))
	s.writeSent(w, "", err, "api setup phone")
}

func (s *Service) apiSend(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	to, err := s.SendCode(r.Context(), req.Token, req.Method, httpx.ClientIP(r))
	s.writeSent(w, to, err, "api send")
}

// SentResponse says where a code went (masked).
type SentResponse struct {
	SentTo    string `json:"sentTo,omitempty"`
	ExpiresIn int    `json:"expiresIn"`
}

func (s *Service) writeSent(w http.ResponseWriter, to string, err error, what string) {
	var blocked *BlockedError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, SentResponse{SentTo: to, ExpiresIn: int(SentCodeTTL / time.Second)})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.Is(err, ErrBadToken):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrBadInput):
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNoMethod), errors.Is(err, ErrNotEnabled):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		s.log.Error(what, "err", err)
		httpx.WriteError(w, http.StatusBadGateway, "the code could not be sent; try again or use another method")
	}
}
