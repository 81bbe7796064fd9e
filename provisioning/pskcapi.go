package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning/pskc"
)

// Paths of seed import and export (PSKC, RFC 6030) in the admin API.
const (
	PSKCImportPath = "/api/v1/admin/pskc/import"
	PSKCExportPath = "/api/v1/admin/pskc/export"
)

// PSKCContentType is the media type of a PSKC document (RFC 6030 §12.1.1).
const PSKCContentType = "application/pskc+xml"

// Request body bounds: an import carries a document of up to
// pskc.MaxDocumentBytes in base64 inside JSON; an export names up to
// pskc.MaxKeys serials.
const (
	maxImportBody = pskc.MaxDocumentBytes/3*4 + 1<<20
	maxExportBody = 1 << 20
)

// PSKCStore is what seed import and export read and change.
type PSKCStore interface {
	ImportCameras(ctx context.Context, cams []model.SeededCamera, audit []model.AuditEntry) error
	ExportSeeds(ctx context.Context, serials []string, audit []model.AuditEntry) ([]model.CameraSeed, error)
	SetCameraKey(ctx context.Context, serial, publicKey string) error
	Camera(ctx context.Context, serial string) (model.Camera, error)
	Cameras(ctx context.Context) ([]model.Camera, error)
	Audit(ctx context.Context, e model.AuditEntry) error
}

// PSKCImportRequest imports the cameras of a PSKC document: each key
// package is a camera (or token) seeded at the factory, registered with
// its seed active. The server decrypts the document with Key (a
// pre-shared key) or Password (PBKDF2).
type PSKCImportRequest struct {
	// PSKC is the document (standard base64 in JSON).
	PSKC []byte `json:"pskc"`
	// Key is the pre-shared key (16, 24 or 32 bytes, base64 in JSON).
	Key []byte `json:"key,omitempty"`
	// Password is the password the document's key derives from.
	Password string `json:"password,omitempty"`
	// AllowPlaintext accepts secrets in plain text.
	AllowPlaintext bool `json:"allowPlaintext,omitempty"`
	// Model, when set, is every camera's model; otherwise the key
	// package's DeviceInfo/Model must be one (body4, body3, workforce).
	Model string `json:"model,omitempty"`
	// PublicKeys are cameras' MQTT identities (cam1:…) by serial; a
	// camera without one can sign officers in but cannot be rotated or
	// wiped over MQTT until its key is registered (SetKey).
	PublicKeys map[string]string `json:"publicKeys,omitempty"`
}

// PSKCImportResponse lists the cameras imported.
type PSKCImportResponse struct {
	// Protection is how the document protected its secrets.
	Protection pskc.Protection `json:"protection"`
	Cameras    []model.Camera  `json:"cameras"`
}

// PSKCExportRequest exports the active seeds of cameras as an encrypted
// PSKC document (the answer's body, PSKCContentType): with Key (16, 24 or
// 32 bytes) or Password (PBKDF2-HMAC-SHA256, Iterations or
// pskc.DefaultIterations), never in plain text.
type PSKCExportRequest struct {
	// Serials are the cameras to export; none: every provisioned camera.
	Serials    []string `json:"serials,omitempty"`
	Key        []byte   `json:"key,omitempty"`
	Password   string   `json:"password,omitempty"`
	Iterations int      `json:"iterations,omitempty"`
	// KeyName names the key or password in the document.
	KeyName string `json:"keyName,omitempty"`
}

// CameraKeyRequest registers the MQTT identity of a camera imported
// without one.
type CameraKeyRequest struct {
	PublicKey string `json:"publicKey"`
}

// PSKC is seed import and export over the admin API, and the
// registration of identity keys for imported cameras.
type PSKC struct {
	st  PSKCStore
	ops Operator
	log *slog.Logger
	// slots bounds the imports and exports running at once: each holds a
	// document of up to 16 MiB (and its JSON) in memory and may derive a
	// key with millions of PBKDF2 iterations.
	slots chan struct{}
}

// PSKCSlots is how many seed imports and exports run at once; more are
// answered 429.
const PSKCSlots = 2

// slot takes a slot for an import or export, or answers 429 and returns
// false; the caller calls release when it got one.
func (p *PSKC) slot(w http.ResponseWriter) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusTooManyRequests, "another seed import or export is running; try again in a few seconds")
		return false
	}
}

func (p *PSKC) release() { <-p.slots }

// NewPSKC returns the handlers; ops gives an imported camera that has a
// public key its broker login.
func NewPSKC(st PSKCStore, ops Operator, log *slog.Logger) *PSKC {
	if log == nil {
		log = slog.Default()
	}
	return &PSKC{st: st, ops: ops, log: log, slots: make(chan struct{}, PSKCSlots)}
}

// Register adds the routes to mux, each behind auth (the admin token).
func (p *PSKC) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST "+PSKCImportPath, auth(http.HandlerFunc(p.importPSKC)))
	mux.Handle("POST "+PSKCExportPath, auth(http.HandlerFunc(p.exportPSKC)))
	mux.Handle("POST /api/v1/admin/cameras/{serial}/key", auth(http.HandlerFunc(p.setKey)))
}

// audit writes e, logging a failure (the action has happened).
func (p *PSKC) audit(ctx context.Context, e model.AuditEntry) {
	if err := p.st.Audit(ctx, e); err != nil {
		p.log.Error("audit write failed", "action", e.Action, "subject", e.Subject, "err", err)
	}
}

// importPSKC registers the document's cameras, all or none.
func (p *PSKC) importPSKC(w http.ResponseWriter, r *http.Request) {
	if !p.slot(w) {
		return
	}
	defer p.release()
	var req PSKCImportRequest
	if err := httpx.DecodeLimit(w, r, &req, maxImportBody); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ip := httpx.ClientIP(r)
	fail := func(status int, err error) {
		p.audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "camera.import", Subject: "pskc", Result: model.Result(err), SourceIP: ip})
		if status == 0 {
			writeErr(w, err)
			return
		}
		httpx.WriteError(w, status, err.Error())
	}
	c, err := pskc.Parse(req.PSKC, pskc.ReadOptions{Key: req.Key, Password: req.Password, AllowPlaintext: req.AllowPlaintext})
	if err != nil {
		fail(http.StatusBadRequest, fmt.Errorf("pskc: %w", err))
		return
	}
	cams, err := SeededCameras(c, req.Model, req.PublicKeys)
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	// Each camera's audit row is written in the import's commit.
	audit := make([]model.AuditEntry, len(cams))
	for i, cam := range cams {
		detail := fmt.Sprintf("pskc key package %d, %s", c.Keys[i].Package, c.Protection)
		if cam.PublicKey == "" {
			detail += ", no identity key"
		}
		audit[i] = model.AuditEntry{Actor: adminActor, Action: "camera.import", Subject: cam.Serial, Result: "ok", SourceIP: ip, Detail: detail}
	}
	if err := p.st.ImportCameras(r.Context(), cams, audit); err != nil {
		var ie *model.ImportError
		if errors.As(err, &ie) && ie.Index < len(c.Keys) {
			err = &pskc.KeyError{Package: c.Keys[ie.Index].Package, SerialNo: cams[ie.Index].Serial, Err: err}
		}
		fail(0, err)
		return
	}
	imported := make(map[string]bool, len(cams))
	for _, cam := range cams {
		imported[cam.Serial] = true
		if cam.PublicKey != "" && p.ops != nil {
			if pub, err := camkey.ParsePublicKey(cam.PublicKey); err == nil {
				p.ops.EnsureAccount(r.Context(), cam.Serial, pub, adminActor, ip)
			}
		}
	}
	all, err := p.st.Cameras(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := PSKCImportResponse{Protection: c.Protection, Cameras: []model.Camera{}}
	for _, cam := range all {
		if imported[cam.Serial] {
			resp.Cameras = append(resp.Cameras, cam)
		}
	}
	p.log.Info("cameras imported from PSKC", "cameras", len(cams), "protection", c.Protection)
	httpx.WriteJSON(w, http.StatusCreated, resp)
}

// SeededCameras turns a PSKC document's keys into cameras to import: TOTP
// keys only, one per serial (DeviceInfo/SerialNo, else the key's Id), the
// model camModel or else the key package's, the public key from pubs by
// serial. An error names the key package.
func SeededCameras(c *pskc.Container, camModel string, pubs map[string]string) ([]model.SeededCamera, error) {
	var forced device.Model
	if camModel != "" {
		m, err := device.ParseModel(camModel)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		forced = m
	}
	if len(pubs) > pskc.MaxKeys {
		return nil, fmt.Errorf("publicKeys: %d, at most %d", len(pubs), pskc.MaxKeys)
	}
	bySerial := map[string]int{}
	var cams []model.SeededCamera
	for _, k := range c.Keys {
		cam, err := seededCamera(k, forced, pubs)
		if err != nil {
			return nil, &pskc.KeyError{Package: k.Package, SerialNo: k.SerialNo, ID: k.ID, Err: err}
		}
		if first, ok := bySerial[cam.Serial]; ok {
			return nil, &pskc.KeyError{Package: k.Package, SerialNo: k.SerialNo, ID: k.ID,
				Err: fmt.Errorf("serial %s is in key package %d already: one seed per camera", cam.Serial, first)}
		}
		bySerial[cam.Serial] = k.Package
		cams = append(cams, cam)
	}
	for sn := range pubs {
		if _, ok := bySerial[sn]; !ok {
			return nil, fmt.Errorf("publicKeys: camera %q is not in the document", sn)
		}
	}
	return cams, nil
}

// seededCamera is one key as a camera to import.
func seededCamera(k pskc.Key, forced device.Model, pubs map[string]string) (model.SeededCamera, error) {
	serial := k.SerialNo
	if serial == "" {
		serial = k.ID
	}
	if serial == "" {
		return model.SeededCamera{}, errors.New("no DeviceInfo/SerialNo and no Key Id: the camera needs a serial")
	}
	if err := device.ValidateSerial(serial); err != nil {
		return model.SeededCamera{}, err
	}
	if k.Algorithm != pskc.AlgorithmTOTP {
		return model.SeededCamera{}, fmt.Errorf("algorithm %q: camotp verifies TOTP codes only (%s)", k.Algorithm, pskc.AlgorithmTOTP)
	}
	camModel := forced
	if camModel == "" {
		m, err := device.ParseModel(k.Model)
		if err != nil {
			return model.SeededCamera{}, fmt.Errorf("DeviceInfo/Model %q is not a camotp model: give the model (--model body4|body3|workforce)", k.Model)
		}
		camModel = m
	}
	seed := device.Seed{Secret: k.Secret, Digits: 6, Period: 30}
	switch strings.ToUpper(strings.TrimPrefix(strings.ToUpper(k.Suite), "HMAC-")) {
	case "", "SHA1":
		seed.Algorithm = "SHA1"
	case "SHA256":
		seed.Algorithm = "SHA256"
	case "SHA512":
		seed.Algorithm = "SHA512"
	default:
		return model.SeededCamera{}, fmt.Errorf("suite %q: want HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512", k.Suite)
	}
	if k.Digits != 0 {
		seed.Digits = k.Digits
	}
	if k.Encoding != "" && !strings.EqualFold(k.Encoding, "DECIMAL") {
		return model.SeededCamera{}, fmt.Errorf("response encoding %q: camotp codes are DECIMAL", k.Encoding)
	}
	if k.Time != nil && *k.Time != 0 {
		return model.SeededCamera{}, fmt.Errorf("Time (T0) %d: camotp counts TOTP steps from the epoch (T0 0)", *k.Time)
	}
	if k.TimeInterval != nil {
		if *k.TimeInterval < 1 || *k.TimeInterval > 300 {
			return model.SeededCamera{}, fmt.Errorf("TimeInterval %d: want 1 to 300 seconds", *k.TimeInterval)
		}
		seed.Period = int(*k.TimeInterval)
	}
	if err := seed.Validate(); err != nil {
		return model.SeededCamera{}, err
	}
	cam := model.SeededCamera{Serial: serial, Model: camModel, Seed: seed}
	if pub, ok := pubs[serial]; ok {
		key, err := camkey.ParsePublicKey(pub)
		if err != nil {
			return model.SeededCamera{}, fmt.Errorf("public key: %w", err)
		}
		cam.PublicKey = key.String()
	}
	return cam, nil
}

// exportPSKC answers the active seeds of the cameras asked for as an
// encrypted PSKC document.
func (p *PSKC) exportPSKC(w http.ResponseWriter, r *http.Request) {
	if !p.slot(w) {
		return
	}
	defer p.release()
	var req PSKCExportRequest
	if err := httpx.DecodeLimit(w, r, &req, maxExportBody); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ip := httpx.ClientIP(r)
	prot := pskc.PreSharedKey
	if req.Password != "" {
		prot = pskc.Password
	}
	fail := func(status int, err error) {
		p.audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "camera.export", Subject: "pskc", Result: model.Result(err), SourceIP: ip})
		if status == 0 {
			writeErr(w, err)
			return
		}
		httpx.WriteError(w, status, err.Error())
	}
	switch {
	case len(req.Key) == 0 && req.Password == "":
		fail(http.StatusBadRequest, errors.New("give a key or a password: seeds are never exported in plain text"))
		return
	case len(req.Serials) > pskc.MaxKeys:
		fail(http.StatusBadRequest, fmt.Errorf("%d serials: at most %d per document", len(req.Serials), pskc.MaxKeys))
		return
	}
	serials := req.Serials
	if len(serials) == 0 {
		cams, err := p.st.Cameras(r.Context())
		if err != nil {
			fail(0, err)
			return
		}
		for _, c := range cams {
			if c.State == model.StateProvisioned {
				serials = append(serials, c.Serial)
			}
		}
		if len(serials) == 0 {
			fail(http.StatusConflict, errors.New("no provisioned camera to export"))
			return
		}
		if len(serials) > pskc.MaxKeys {
			fail(http.StatusBadRequest, fmt.Errorf("%d provisioned cameras: at most %d per document; name the serials", len(serials), pskc.MaxKeys))
			return
		}
	}
	if len(req.Key) > 0 && req.Password != "" {
		fail(http.StatusBadRequest, errors.New("give a key or a password, not both"))
		return
	}
	if n := len(req.Key); n != 0 && n != 16 && n != 24 && n != 32 {
		fail(http.StatusBadRequest, fmt.Errorf("key must be 16, 24 or 32 bytes (AES-128, -192, -256), got %d", n))
		return
	}
	if req.Iterations < 0 || req.Iterations > pskc.MaxIterations {
		fail(http.StatusBadRequest, fmt.Errorf("pskc: PBKDF2 iterations must be 1 to %d, got %d", pskc.MaxIterations, req.Iterations))
		return
	}
	var unique []string
	seen := map[string]bool{}
	for _, sn := range serials {
		if !seen[sn] {
			seen[sn] = true
			unique = append(unique, sn)
		}
	}
	// Each camera's audit row is written in the commit that reads its
	// seed: no seed leaves without it.
	audit := make([]model.AuditEntry, len(unique))
	for i, sn := range unique {
		audit[i] = model.AuditEntry{Actor: adminActor, Action: "camera.export", Subject: sn, Result: "ok", SourceIP: ip, Detail: "pskc, " + string(prot)}
	}
	seeds, err := p.st.ExportSeeds(r.Context(), unique, audit)
	if err != nil {
		fail(0, err)
		return
	}
	keys := make([]pskc.Key, 0, len(seeds))
	for _, cs := range seeds {
		t0, step := int64(0), int64(cs.Seed.Period)
		keys = append(keys, pskc.Key{Manufacturer: "camotp", SerialNo: cs.Camera.Serial, Model: string(cs.Camera.Model), ID: cs.Camera.Serial,
			Algorithm: pskc.AlgorithmTOTP, Issuer: "camotp", Suite: "HMAC-" + strings.ToUpper(cs.Seed.Algorithm), Digits: cs.Seed.Digits,
			Encoding: "DECIMAL", Secret: cs.Seed.Secret, Time: &t0, TimeInterval: &step})
	}
	doc, err := pskc.Marshal(keys, pskc.WriteOptions{Key: req.Key, Password: req.Password, Iterations: req.Iterations, KeyName: req.KeyName})
	if err != nil {
		// The options were checked above; the audit rows stand for the
		// seeds that were read.
		fail(http.StatusBadRequest, fmt.Errorf("pskc: %w", err))
		return
	}
	p.log.Info("seeds exported as PSKC", "cameras", len(keys), "protection", prot)
	w.Header().Set("Content-Type", PSKCContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}

// setKey registers the MQTT identity of a camera imported without one.
func (p *PSKC) setKey(w http.ResponseWriter, r *http.Request) {
	var req CameraKeyRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	serial := r.PathValue("serial")
	pub, err := camkey.ParsePublicKey(req.PublicKey)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "publicKey: "+err.Error())
		return
	}
	err = p.st.SetCameraKey(r.Context(), serial, pub.String())
	p.audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "camera.key", Subject: serial, Result: model.Result(err), SourceIP: httpx.ClientIP(r)})
	if err != nil {
		writeErr(w, err)
		return
	}
	if p.ops != nil {
		p.ops.EnsureAccount(r.Context(), serial, pub, adminActor, httpx.ClientIP(r))
	}
	cam, err := p.st.Camera(r.Context(), serial)
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, cam)
}
