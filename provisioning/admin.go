package provisioning

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/auditexport"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage"
)

// AdminStore is what the admin API reads and changes.
type AdminStore interface {
	AddCamera(ctx context.Context, serial string, model device.Model, publicKey string) error
	Camera(ctx context.Context, serial string) (model.Camera, error)
	Cameras(ctx context.Context) ([]model.Camera, error)
	Assign(ctx context.Context, serial, username string) error
	Unassign(ctx context.Context, serial string) error
	AssignAll(ctx context.Context, as []model.Assignment) error
	CameraPage(ctx context.Context, q model.CameraQuery) (model.CameraPage, error)
	CameraRow(ctx context.Context, serial string) (model.CameraRow, error)
	CameraStates(ctx context.Context) (map[string]int, error)
	User(ctx context.Context, username string) (model.User, string, error)
	UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error)
	AuditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error)
	AddUser(ctx context.Context, u model.User, passwordHash string) error
	Users(ctx context.Context) ([]model.User, error)
	SetPassword(ctx context.Context, username, hash string) error
	DeleteTokens(ctx context.Context, username, kind string) error
	Audit(ctx context.Context, e model.AuditEntry) error
	AuditLog(ctx context.Context, subject string, limit int) ([]model.AuditEntry, error)
	VerifyAudit(ctx context.Context) (model.AuditVerdict, error)
	AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error
	CameraClocks(ctx context.Context) ([]model.CameraClock, error)
}

// Operator starts provisioning operations and gives a newly registered
// camera its broker login (a no-op unless the broker needs one made).
type Operator interface {
	Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error)
	EnsureAccount(ctx context.Context, serial string, key camkey.PublicKey, actor, ip string)
	LostReporter
}

// AdminAPI is the fleet admin JSON API under /api/v1/admin/, protected by
// a bearer admin token.
type AdminAPI struct {
	store AdminStore
	ops   Operator
	fleet *Fleet
	token []byte
	hash  func(ctx context.Context, pw string) (string, error)
	// exports holds a token for each audit export or chain check running.
	exports chan struct{}
}

// SetPasswordHasher makes the API hash new passwords with hash (the
// sign-in service's, so that every hash has the configured parameters and
// counts against its memory budget); call it before serving. The default
// is password.Hash.
func (a *AdminAPI) SetPasswordHasher(hash func(ctx context.Context, pw string) (string, error)) {
	a.hash = hash
}

// hashPassword hashes pw for a new or changed password and says why not:
// 400 for a password that does not meet the rules, 503 when hashing is at
// capacity. It reports whether it answered.
func (a *AdminAPI) hashPassword(w http.ResponseWriter, r *http.Request, pw string) (string, bool) {
	h, err := a.hash(r.Context(), pw)
	if err != nil {
		if !httpx.WriteUnavailable(w, err) {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
		}
		return "", true
	}
	return h, false
}

// NewAdminAPI returns the API handler.
func NewAdminAPI(st AdminStore, ops Operator, token string) *AdminAPI {
	return &AdminAPI{store: st, ops: ops, fleet: NewFleet(st, ops), token: []byte(token), exports: make(chan struct{}, auditexport.MaxAtOnce),
		hash: func(_ context.Context, pw string) (string, error) { return password.Hash(pw) }}
}

// Register adds the API's routes to mux.
func (a *AdminAPI) Register(mux *http.ServeMux) {
	h := func(f http.HandlerFunc) http.Handler { return a.auth(f) }
	mux.Handle("POST /api/v1/admin/cameras", h(a.addCamera))
	mux.Handle("GET /api/v1/admin/cameras", h(a.listCameras))
	mux.Handle("GET /api/v1/admin/cameras/{serial}", h(a.getCamera))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/provision", h(a.op(model.OpProvision)))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/rotate", h(a.op(model.OpRotate)))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/wipe", h(a.op(model.OpWipe)))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/assign", h(a.assign))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/unassign", h(a.unassign))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/report-lost", h(a.reportLost))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/found", h(a.found))
	mux.Handle("POST /api/v1/admin/users", h(a.addUser))
	mux.Handle("GET /api/v1/admin/users", h(a.listUsers))
	mux.Handle("POST /api/v1/admin/users/{username}/password", h(a.setPassword))
	mux.Handle("GET /api/v1/admin/audit", h(a.audit))
	mux.Handle("POST /api/v1/admin/audit/verify", h(a.verifyAudit))
	mux.Handle("GET /api/v1/admin/audit/export", h(a.exportAudit))
	mux.Handle("GET /api/v1/admin/clocks", h(a.listClocks))
}

const adminActor = "admin"

// Auth wraps next so that it answers only requests bearing the admin
// token (401 otherwise, audited); other packages put their admin routes
// behind it.
func (a *AdminAPI) Auth(next http.Handler) http.Handler { return a.auth(next) }

func (a *AdminAPI) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), a.token) != 1 {
			a.store.Audit(r.Context(), model.AuditEntry{Actor: "anonymous", Action: "admin.auth", Subject: r.URL.Path, Result: "error: bad admin token", SourceIP: httpx.ClientIP(r)})
			w.Header().Set("WWW-Authenticate", `Bearer realm="camotp-admin"`)
			httpx.WriteError(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeErr maps store errors to statuses.
func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, storage.ErrExists), errors.Is(err, storage.ErrConflict):
		httpx.WriteError(w, http.StatusConflict, err.Error())
	case httpx.WriteUnavailable(w, err): // disk full, read-only: 503 with the reason
	default:
		httpx.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}

// ServerKeyPath is where the admin API gives the server's X25519 public
// key, the key a camera pins at enrolment (camotp camera init --server-key).
const ServerKeyPath = "/api/v1/admin/server-key"

// ServerKeyResponse carries the server's X25519 public key (standard base64 in JSON).
type ServerKeyResponse struct {
	ServerKey []byte `json:"serverKey"`
}

// CameraRequest registers a camera.
type CameraRequest struct {
	Serial    string `json:"serial"`
	Model     string `json:"model"`
	PublicKey string `json:"publicKey"`
}

func (a *AdminAPI) addCamera(w http.ResponseWriter, r *http.Request) {
	var req CameraRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := device.ValidateSerial(req.Serial); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	camModel, err := device.ParseModel(req.Model)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	pub, err := camkey.ParsePublicKey(req.PublicKey)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "publicKey: "+err.Error())
		return
	}
	err = a.store.AddCamera(r.Context(), req.Serial, camModel, pub.String())
	a.store.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "camera.add", Subject: req.Serial, Result: model.Result(err), SourceIP: httpx.ClientIP(r)})
	if err != nil {
		writeErr(w, err)
		return
	}
	a.ops.EnsureAccount(r.Context(), req.Serial, pub, adminActor, httpx.ClientIP(r))
	cam, err := a.store.Camera(r.Context(), req.Serial)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, cam)
}

func (a *AdminAPI) listCameras(w http.ResponseWriter, r *http.Request) {
	cams, err := a.store.Cameras(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	if cams == nil {
		cams = []model.Camera{}
	}
	httpx.WriteJSON(w, http.StatusOK, cams)
}

func (a *AdminAPI) getCamera(w http.ResponseWriter, r *http.Request) {
	cam, err := a.store.Camera(r.Context(), r.PathValue("serial"))
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, cam)
}

// OpResponse answers a provisioning operation.
type OpResponse struct {
	Serial  string   `json:"serial"`
	Op      model.Op `json:"op"`
	Version uint64   `json:"version"`
}

func (a *AdminAPI) op(op model.Op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serial := r.PathValue("serial")
		v, err := a.fleet.Start(r.Context(), serial, op, adminActor, httpx.ClientIP(r))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusAccepted, OpResponse{Serial: serial, Op: op, Version: v})
	}
}

// AssignRequest names the user a camera goes to.
type AssignRequest struct {
	User string `json:"user"`
}

func (a *AdminAPI) assign(w http.ResponseWriter, r *http.Request) {
	var req AssignRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	serial := r.PathValue("serial")
	if err := a.fleet.Assign(r.Context(), serial, req.User, adminActor, httpx.ClientIP(r)); err != nil {
		writeErr(w, err)
		return
	}
	a.getCamera(w, r)
}

func (a *AdminAPI) unassign(w http.ResponseWriter, r *http.Request) {
	serial := r.PathValue("serial")
	if err := a.fleet.Unassign(r.Context(), serial, adminActor, httpx.ClientIP(r)); err != nil {
		writeErr(w, err)
		return
	}
	a.getCamera(w, r)
}

// UserRequest creates a user. Role is admin, fleet, security or officer
// (model.ParseRole: empty, or the old "user", is officer).
type UserRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Phone    string `json:"phone,omitempty"`
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
}

func validUsername(u string) bool {
	if len(u) < 1 || len(u) > 64 {
		return false
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return false
		}
	}
	return true
}

func (a *AdminAPI) addUser(w http.ResponseWriter, r *http.Request) {
	var req UserRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case !validUsername(req.Username):
		httpx.WriteError(w, http.StatusBadRequest, "username must be 1-64 letters, digits or ._-@")
		return
	case !strings.Contains(req.Email, "@") || len(req.Email) > 254:
		httpx.WriteError(w, http.StatusBadRequest, "email must be an address")
		return
	}
	role, err := model.ParseRole(req.Role)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	hash, answered := a.hashPassword(w, r, req.Password)
	if answered {
		return
	}
	u := model.User{Username: req.Username, Email: req.Email, Phone: req.Phone, Role: string(role)}
	err = a.store.AddUser(r.Context(), u, hash)
	a.store.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "user.add", Subject: req.Username, Result: model.Result(err),
		SourceIP: httpx.ClientIP(r), Detail: "role " + string(role)})
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, u)
}

// PasswordRequest sets a user's password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// setPassword replaces the password and ends every session and trusted
// browser of the user.
func (a *AdminAPI) setPassword(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	user := r.PathValue("username")
	hash, answered := a.hashPassword(w, r, req.Password)
	if answered {
		return
	}
	err := a.store.SetPassword(r.Context(), user, hash)
	if err == nil {
		err = a.store.DeleteTokens(r.Context(), user, "")
	}
	a.store.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "user.password", Subject: user, Result: model.Result(err), SourceIP: httpx.ClientIP(r)})
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"username": user})
}

func (a *AdminAPI) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.store.Users(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	if users == nil {
		users = []model.User{}
	}
	httpx.WriteJSON(w, http.StatusOK, users)
}

func (a *AdminAPI) audit(w http.ResponseWriter, r *http.Request) {
	entries, err := a.store.AuditLog(r.Context(), r.URL.Query().Get("subject"), 500)
	if err != nil {
		writeErr(w, err)
		return
	}
	if entries == nil {
		entries = []model.AuditEntry{}
	}
	httpx.WriteJSON(w, http.StatusOK, entries)
}

// verifyAudit checks the audit log's hash chains and answers the verdict
// (200 whether or not they hold: Broken says); the check is audited too.
func (a *AdminAPI) verifyAudit(w http.ResponseWriter, r *http.Request) {
	// A check reads the whole log, as an export does: they share its slots.
	if !a.auditSlot(w) {
		return
	}
	defer func() { <-a.exports }()
	v, err := a.store.VerifyAudit(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	result, detail := "ok", fmt.Sprintf("%d rows in %d chains hold", v.Rows, v.Chains)
	if b := v.Broken; b != nil {
		result, detail = "error: chain broken", b.Reason
	}
	a.store.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "audit.verify", Subject: "audit", Result: result,
		SourceIP: httpx.ClientIP(r), Detail: detail})
	httpx.WriteJSON(w, http.StatusOK, v)
}

// auditSlot takes one of the auditexport.MaxAtOnce slots of the reads of
// the whole audit log (exports, chain checks), or answers 429 and returns
// false; the caller gives a slot it took back with <-a.exports.
func (a *AdminAPI) auditSlot(w http.ResponseWriter) bool {
	select {
	case a.exports <- struct{}{}:
		return true
	default:
		httpx.SetRetryAfter(w, 10*time.Second)
		httpx.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("%d exports or checks of the audit log are running already: try again when one has finished", auditexport.MaxAtOnce))
		return false
	}
}
