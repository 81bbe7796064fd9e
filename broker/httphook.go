package broker

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Paths of the HTTP hook an external broker (EMQX 5) calls.
const (
	HookAuthPath = "/api/v1/mqtt/auth"
	HookACLPath  = "/api/v1/mqtt/acl"
)

// MaxHookBody bounds a hook request body: EMQX sends a few short fields.
const MaxHookBody = 4 << 10

// Hook results, as EMQX 5 reads them from the "result" field.
const (
	HookAllow = "allow"
	HookDeny  = "deny"
)

// HookAuthRequest is the body EMQX's HTTP authenticator sends (its body
// template maps ${username}, ${password}, ${clientid}; other fields are
// ignored).
type HookAuthRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ClientID string `json:"clientid"`
}

// HookACLRequest is the body EMQX's HTTP authorizer sends (${username},
// ${clientid}, ${topic}, ${action}: "publish" or "subscribe").
type HookACLRequest struct {
	Username string `json:"username"`
	ClientID string `json:"clientid"`
	Topic    string `json:"topic"`
	Action   string `json:"action"`
}

// HookResponse answers both hooks.
type HookResponse struct {
	Result      string `json:"result"`
	IsSuperuser *bool  `json:"is_superuser,omitempty"`
}

// HTTPHook serves EMQX 5's HTTP authentication and authorisation requests
// with the embedded broker's decisions (Auth.Authenticate, Auth.Allowed),
// so a clustered broker enforces the same camera identity: each camera
// logs in as itself and reaches only its own topics.
//
// Only the broker may call it: every request must bear the hook token
// (constant-time compare; 401 otherwise). A request from the broker is
// always answered 200 with allow or deny; one that cannot be read
// (malformed, over MaxHookBody) is denied, so the hook fails closed
// whatever the broker does with other statuses.
type HTTPHook struct {
	auth  *Auth
	token []byte
	log   *slog.Logger
}

// NewHTTPHook returns the hook; token is the bearer secret the broker sends.
func NewHTTPHook(auth *Auth, token string, log *slog.Logger) *HTTPHook {
	if log == nil {
		log = slog.Default()
	}
	return &HTTPHook{auth: auth, token: []byte(token), log: log}
}

// Register adds the hook's routes to mux.
func (h *HTTPHook) Register(mux *http.ServeMux) {
	mux.Handle("POST "+HookAuthPath, h.bearer(http.HandlerFunc(h.authenticate)))
	mux.Handle("POST "+HookACLPath, h.bearer(http.HandlerFunc(h.authorize)))
}

func (h *HTTPHook) bearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(h.token) == 0 || subtle.ConstantTimeCompare([]byte(tok), h.token) != 1 {
			h.log.Warn("mqtt hook: request without the hook token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="camotp-mqtt-hook"`)
			http.Error(w, "missing or wrong hook token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decodeHook reads one JSON object of at most MaxHookBody bytes; unknown
// fields are allowed (operators may add placeholders to the template).
func decodeHook(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxHookBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body exceeds %d bytes", MaxHookBody)
		}
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object, or over the size limit")
	}
	return nil
}

func answer(w http.ResponseWriter, result string, superuser *bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(HookResponse{Result: result, IsSuperuser: superuser})
}

func (h *HTTPHook) authenticate(w http.ResponseWriter, r *http.Request) {
	no := false
	var req HookAuthRequest
	if err := decodeHook(w, r, &req); err != nil {
		h.log.Warn("mqtt hook: connect denied", "reason", err.Error())
		answer(w, HookDeny, &no)
		return
	}
	err := h.auth.Authenticate(r.Context(), Login{Username: req.Username, ClientID: req.ClientID, Password: []byte(req.Password)})
	if err != nil {
		h.log.Warn("mqtt hook: connect denied", "user", req.Username, "clientid", req.ClientID, "reason", err.Error())
		answer(w, HookDeny, &no)
		return
	}
	answer(w, HookAllow, &no)
}

func (h *HTTPHook) authorize(w http.ResponseWriter, r *http.Request) {
	var req HookACLRequest
	if err := decodeHook(w, r, &req); err != nil {
		h.log.Warn("mqtt hook: acl denied", "reason", err.Error())
		answer(w, HookDeny, nil)
		return
	}
	var write bool
	switch req.Action {
	case "publish":
		write = true
	case "subscribe":
	default:
		h.log.Warn("mqtt hook: acl denied", "user", req.Username, "action", req.Action, "reason", "action must be publish or subscribe")
		answer(w, HookDeny, nil)
		return
	}
	if !h.auth.Allowed(req.Username, req.ClientID, req.Topic, write) {
		h.log.Warn("mqtt hook: acl denied", "user", req.Username, "clientid", req.ClientID, "topic", req.Topic, "action", req.Action)
		answer(w, HookDeny, nil)
		return
	}
	answer(w, HookAllow, nil)
}
