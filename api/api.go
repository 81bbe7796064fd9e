// Package api is the JSON front door of the sign-in service: the sign-in
// API (/api/v1/auth/...) and the MFA administration routes
// (/api/v1/admin/...). Its handlers decode requests, call package signin
// and map its answers and errors to HTTP statuses; no rule lives here.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/signin"
)

// API serves the JSON API over the sign-in service.
type API struct {
	svc *signin.Service
	log *slog.Logger
}

// New returns the JSON API over svc; log gets server-side failures
// (nil: slog.Default()).
func New(svc *signin.Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	return &API{svc: svc, log: log}
}

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

// Register adds the JSON sign-in API to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/auth/login", a.apiLogin)
	mux.HandleFunc("POST /api/v1/auth/verify", a.apiVerify)
	mux.HandleFunc("POST /api/v1/auth/setup/app", a.apiSetupApp)
	mux.HandleFunc("POST /api/v1/auth/setup/phone", a.apiSetupPhone)
	mux.HandleFunc("POST /api/v1/auth/setup/confirm", a.apiSetupConfirm)
	mux.HandleFunc("POST /api/v1/auth/send", a.apiSend)
}

func writeBlocked(w http.ResponseWriter, b *signin.BlockedError) {
	httpx.SetRetryAfter(w, b.RetryAfter)
	httpx.WriteError(w, http.StatusTooManyRequests, b.Error())
}

func (a *API) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := a.svc.Login(r.Context(), req.Username, req.Password, httpx.ClientIP(r), "")
	var blocked *signin.BlockedError
	switch {
	case err == nil && res.Session != "":
		httpx.WriteJSON(w, http.StatusOK, LoginResponse{SessionToken: res.Session, Methods: []string{}})
	case err == nil:
		resp := LoginResponse{Token: res.Pending, Authenticator: res.Method, Methods: res.Methods.Available}
		if resp.Methods == nil {
			resp.Methods = []string{}
		}
		if res.Method == signin.MethodSetup {
			resp.SetupMethods = res.Methods.CanSetUp
		}
		httpx.WriteJSON(w, http.StatusOK, resp)
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.Is(err, signin.ErrBadCredentials):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, signin.ErrNoMethod):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, a.log, "api login", err)
	}
}

func (a *API) apiVerify(w http.ResponseWriter, r *http.Request) {
	var req VerifyRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess, err := a.svc.VerifyMethod(r.Context(), req.Token, req.Method, req.Code, httpx.ClientIP(r))
	a.writeSession(w, sess, err, "api verify")
}

// writeSession answers a code check: the session token, or the error.
func (a *API) writeSession(w http.ResponseWriter, sess string, err error, what string) {
	var setup *signin.SetupNeeded
	if errors.As(err, &setup) {
		httpx.WriteJSON(w, http.StatusOK, LoginResponse{Token: setup.Pending, Authenticator: signin.MethodSetup, Methods: []string{}, SetupMethods: setup.Methods})
		return
	}
	var blocked *signin.BlockedError
	var codeErr *signin.CodeError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, VerifyResponse{SessionToken: sess})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.As(err, &codeErr):
		httpx.WriteJSON(w, http.StatusUnauthorized, CodeErrorResponse{Error: codeErr.Error(), AttemptsLeft: codeErr.AttemptsLeft})
	case errors.Is(err, signin.ErrBadToken), errors.Is(err, signin.ErrNoEnrolment):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, signin.ErrNoMethod), errors.Is(err, signin.ErrNotEnabled), errors.Is(err, signin.ErrSetupRequired):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, a.log, what, err)
	}
}

// SetupAppResponse is a new authenticator-app key.
type SetupAppResponse struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	// QRPNG is the QR code of URI, a base64 PNG.
	QRPNG []byte `json:"qrPng"`
}

func (a *API) apiSetupApp(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	enr, err := a.svc.SetupApp(r.Context(), req.Token)
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, SetupAppResponse{Secret: enr.Secret, URI: enr.URI, QRPNG: enr.QRPNG})
	case errors.Is(err, signin.ErrBadToken):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, signin.ErrNotEnabled):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		httpx.ServerError(w, a.log, "api setup app", err)
	}
}

func (a *API) apiSetupConfirm(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess, err := a.svc.FinishSetup(r.Context(), req.Token, req.Method, req.Code, httpx.ClientIP(r))
	a.writeSession(w, sess, err, "api setup confirm")
}

func (a *API) apiSetupPhone(w http.ResponseWriter, r *http.Request) {
	var req SetupRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	err := a.svc.SetupPhone(r.Context(), req.Token, req.Phone, httpx.ClientIP(r))
	a.writeSent(w, "", a.svc.SentCodeTTL(signin.MethodSMS), err, "api setup phone")
}

func (a *API) apiSend(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	to, err := a.svc.SendCode(r.Context(), req.Token, req.Method, httpx.ClientIP(r))
	a.writeSent(w, to, a.svc.SentCodeTTL(req.Method), err, "api send")
}

// SentResponse says where a code went (masked).
type SentResponse struct {
	SentTo    string `json:"sentTo,omitempty"`
	ExpiresIn int    `json:"expiresIn"`
}

func (a *API) writeSent(w http.ResponseWriter, to string, ttl time.Duration, err error, what string) {
	var blocked *signin.BlockedError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, SentResponse{SentTo: to, ExpiresIn: int(ttl / time.Second)})
	case errors.As(err, &blocked):
		writeBlocked(w, blocked)
	case errors.Is(err, signin.ErrBadToken):
		httpx.WriteError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, signin.ErrBadInput):
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, signin.ErrNoMethod), errors.Is(err, signin.ErrNotEnabled):
		httpx.WriteError(w, http.StatusForbidden, err.Error())
	default:
		a.log.Error(what, "err", err)
		httpx.WriteError(w, http.StatusBadGateway, "the code could not be sent; try again or use another method")
	}
}
