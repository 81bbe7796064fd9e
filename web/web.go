// Package web is the sign-in pages' front door of the sign-in service:
// server-rendered forms (no JavaScript needed) for the password, the MFA
// challenge with the camera's how-to steps, the first-time set-up, the
// Security page and the admin page, and the hand-off through which the
// OpenID Connect provider sends browsers here to sign in. Its handlers call
// package signin and render its answers; no rule lives here.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/rollover"
	"github.com/camotp/camotp/signin"
)

//go:embed templates/*.html
var templateFS embed.FS

// Cookie names.
const (
	cookieCSRF    = "camotp_csrf"
	cookiePending = "camotp_mfa"
	cookieSession = "camotp_session"
	cookieTrust   = "camotp_trust"
)

// maxForm bounds a form body.
const maxForm = 16 * 1024

// Web serves the sign-in pages (server-rendered, no JavaScript needed).
type Web struct {
	svc  *signin.Service
	cfg  signin.Config // the service's: the lifetimes of the cookies
	log  *slog.Logger
	tmpl *template.Template
	// exports holds a token for each audit export or chain check running.
	exports chan struct{}
	// SecureCookies forces the Secure flag (behind a TLS-terminating proxy);
	// it is always set on requests that arrived over TLS.
	SecureCookies bool
	// Outbox, when set, serves the development outbox at /dev/outbox
	// (never in production: it shows the codes sent).
	Outbox func(ctx context.Context) ([]model.OutboxMessage, error)
	// Handoff, when set, is the front door whose requests the sign-in
	// pages answer (/login?authRequest=ID).
	Handoff Handoff
	// OrgName names the agency on every page ("" none).
	OrgName string
	// Fleet, when set, serves the console's camera pages.
	Fleet Fleet
	// Audit, when set, serves the console's audit log.
	Audit AuditLog
	// Now is the pages' clock (nil: time.Now).
	Now func() time.Time
	// Clocks, when set, gives the camera pages the cameras' clock
	// reports (offset, drifting and clock-mismatch badges).
	Clocks Clocks
	// Rotation, when set, shows the seed rollover policy and the fleet's
	// progress through it on the policy page.
	Rotation func(ctx context.Context) (rollover.Status, error)
}

// New returns the sign-in pages over svc; log gets server-side failures
// (nil: slog.Default()).
func New(svc *signin.Service, log *slog.Logger) (*Web, error) {
	if log == nil {
		log = slog.Default()
	}
	t, err := template.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Web{svc: svc, cfg: svc.Config(), log: log, tmpl: t, exports: make(chan struct{}, MaxExports)}, nil
}

// Register adds the pages to mux, with cross-origin protection on every
// state-changing request and a CSRF token on every form.
func (wb *Web) Register(mux *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	h := func(f http.HandlerFunc) http.Handler { return cop.Handler(headers(f)) }
	mux.Handle("GET /{$}", h(wb.root))
	mux.Handle("GET /login", h(wb.loginPage))
	mux.Handle("POST /login", h(wb.csrf(wb.loginPost)))
	mux.Handle("GET /mfa", h(wb.mfaPage))
	mux.Handle("POST /mfa", h(wb.csrf(wb.mfaPost)))
	mux.Handle("POST /mfa/setup", h(wb.csrf(wb.setupPost)))
	mux.Handle("POST /mfa/setup/phone", h(wb.csrf(wb.setupPhonePost)))
	mux.Handle("POST /mfa/send", h(wb.csrf(wb.sendPost)))
	mux.Handle("POST /security/phone/start", h(wb.csrf(wb.signedIn(wb.phoneStart))))
	mux.Handle("POST /security/phone/confirm", h(wb.csrf(wb.signedIn(wb.phoneConfirm))))
	mux.Handle("POST /security/phone/remove", h(wb.csrf(wb.signedIn(wb.phoneRemove))))
	if wb.Outbox != nil {
		mux.Handle("GET /dev/outbox", h(wb.outboxPage))
	}
	mux.Handle("GET /home", h(wb.home))
	mux.Handle("GET /security", h(wb.securityPage))
	mux.Handle("POST /security/app/start", h(wb.csrf(wb.signedIn(wb.appStart))))
	mux.Handle("POST /security/app/confirm", h(wb.csrf(wb.signedIn(wb.appConfirm))))
	mux.Handle("POST /security/app/remove", h(wb.csrf(wb.signedIn(wb.appRemove))))
	mux.Handle("POST /security/backup", h(wb.csrf(wb.signedIn(wb.backupNew))))
	mux.Handle("POST /security/password", h(wb.csrf(wb.signedIn(wb.passwordPost))))
	mux.Handle("POST /logout", h(wb.csrf(wb.logout)))
	wb.registerConsole(mux, h)
}

// csp is the pages' Content-Security-Policy for a form-action.
func csp(formAction string) string {
	return "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'"
}

func headers(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp("'self'"))
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next(w, r)
	}
}

func (wb *Web) secure(r *http.Request) bool { return r.TLS != nil || wb.SecureCookies }

func (wb *Web) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: wb.secure(r), SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken returns the browser's CSRF token, setting the cookie if needed
// (double-submit: the form field must equal the cookie).
func (wb *Web) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if v := cookie(r, cookieCSRF); len(v) == 43 {
		return v
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: cookieCSRF, Value: v, Path: "/", HttpOnly: true, Secure: wb.secure(r), SameSite: http.SameSiteStrictMode})
	return v
}

func (wb *Web) csrf(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "form too large or malformed", http.StatusBadRequest)
			return
		}
		if !wb.csrfValid(r) {
			http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// csrfValid tells whether the parsed form's token equals the browser's
// CSRF cookie (compared in constant time).
func (wb *Web) csrfValid(r *http.Request) bool {
	c := cookie(r, cookieCSRF)
	return c != "" && subtle.ConstantTimeCompare([]byte(c), []byte(r.PostForm.Get("csrf"))) == 1
}

// page is the data every template gets.
type page struct {
	CSRF     string
	Org      string
	Error    string
	Notice   string
	Username string
	Model    string
	HowTo    []string
	TrustFor string
	// MFA step: the method shown and the other options.
	Method string
	Others []option
	// App set-up: the key and its QR code (a data: URL).
	Secret string
	QR     template.URL
	// Security page.
	Methods signin.UserMethods
	Codes   []string
	// Codes sent by text, call or email: where the last one went, where
	// the next goes (masked), how long one lasts; the phone being
	// confirmed.
	SentTo   string
	MaskedTo string
	Sends    bool
	CodeLife string
	Confirm  string
	// Blocked says attempts are refused for now: the code field is
	// disabled.
	Blocked bool
	Outbox  []model.OutboxMessage
	// IsAdmin shows the link to the console (home page).
	IsAdmin bool
	// Client is the application a handed-off sign-in continues to.
	Client string
}

// option is another MFA method the challenge offers.
type option struct{ ID, Label string }

var methodLabels = map[string]string{
	signin.MethodBodycam: "Body camera code",
	signin.MethodApp:     "Authenticator app code",
	signin.MethodSMS:     "Text message to your phone",
	signin.MethodCall:    "Phone call",
	signin.MethodEmail:   "Email",
	signin.MethodBackup:  "Backup code",
}

func (wb *Web) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CSRF, p.Org = wb.csrfToken(w, r), wb.OrgName
	if id := wb.handoffID(r); id != "" && p.Client == "" {
		if hr, err := wb.Handoff.Describe(r.Context(), id); err == nil {
			allowOrigin(w, hr.RedirectOrigin)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := wb.tmpl.ExecuteTemplate(w, name, p); err != nil {
		wb.log.Error("render page", "page", name, "err", err)
	}
}

func (wb *Web) root(w http.ResponseWriter, r *http.Request) {
	if _, err := wb.svc.Session(r.Context(), cookie(r, cookieSession)); err == nil {
		http.Redirect(w, r, "/home", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (wb *Web) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequest")
	if wb.Handoff == nil || id == "" {
		if cookie(r, cookieHandoff) != "" {
			wb.setCookie(w, r, cookieHandoff, "", -1)
		}
		wb.render(w, r, http.StatusOK, "login.html", page{})
		return
	}
	hr, err := wb.Handoff.Describe(r.Context(), id)
	if err != nil {
		wb.setCookie(w, r, cookieHandoff, "", -1)
		wb.render(w, r, http.StatusBadRequest, "login.html", page{Error: ErrHandoff.Error()})
		return
	}
	if !wb.Handoff.Owns(r, id) {
		wb.setCookie(w, r, cookieHandoff, "", -1)
		wb.render(w, r, http.StatusForbidden, "login.html", page{Error: ErrOtherBrowser.Error()})
		return
	}
	if sess := cookie(r, cookieSession); sess != "" {
		// Signed in already: back to the application when the session
		// meets the request's demands.
		to, err := wb.Handoff.Finish(r.Context(), id, sess)
		if err == nil {
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if !errors.Is(err, ErrReauthenticate) {
			wb.log.Warn("hand sign-in back", "err", err)
		}
	}
	wb.setCookie(w, r, cookieHandoff, id, wb.cfg.PendingTTL)
	allowOrigin(w, hr.RedirectOrigin)
	wb.render(w, r, http.StatusOK, "login.html", page{Client: hr.Client})
}

func (wb *Web) loginPost(w http.ResponseWriter, r *http.Request) {
	user := r.PostForm.Get("username")
	trust := cookie(r, cookieTrust)
	if id := wb.handoffID(r); id != "" {
		// A trusted browser skips the second factor only when the
		// application's request allows it.
		if hr, err := wb.Handoff.Describe(r.Context(), id); err != nil || !hr.TrustAllowed {
			trust = ""
		}
	}
	res, err := wb.svc.Login(r.Context(), user, r.PostForm.Get("password"), httpx.ClientIP(r), trust)
	var blocked *signin.BlockedError
	switch {
	case err == nil && res.Session != "":
		wb.setCookie(w, r, cookieSession, res.Session, wb.cfg.SessionTTL)
		http.Redirect(w, r, wb.landing(w, r, res.Session), http.StatusSeeOther)
	case err == nil:
		wb.setCookie(w, r, cookiePending, res.Pending, wb.cfg.PendingTTL)
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
	case errors.As(err, &blocked):
		httpx.SetRetryAfter(w, blocked.RetryAfter)
		wb.render(w, r, http.StatusTooManyRequests, "login.html", page{Error: err.Error(), Username: user})
	case errors.Is(err, signin.ErrBadCredentials):
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error(), Username: user})
	case errors.Is(err, signin.ErrNoMethod):
		wb.render(w, r, http.StatusForbidden, "login.html", page{Error: err.Error(), Username: user})
	default:
		status, msg := wb.serverError(w, "web login", err)
		wb.render(w, r, status, "login.html", page{Error: msg, Username: user})
	}
}

// mfaData is the MFA step of the pending sign-in, showing method (when
// the user can use it) or the challenge's default.
func (wb *Web) mfaData(r *http.Request, method string) (page, error) {
	user, um, err := wb.svc.Pending(r.Context(), cookie(r, cookiePending))
	if err != nil {
		return page{}, err
	}
	p := page{Username: user, Model: um.Camera.DisplayName(), HowTo: um.Camera.HowTo(),
		TrustFor: humanDuration(wb.cfg.TrustFor), Method: um.Default, Methods: um}
	if um.Default != signin.MethodSetup && slices.Contains(um.Available, method) {
		p.Method = method
	}
	p.Sends = signin.Sends(p.Method)
	if p.Sends {
		p.CodeLife = signin.Lifetime(wb.svc.SentCodeTTL(p.Method))
		if p.Method == signin.MethodEmail {
			p.MaskedTo = signin.Mask(um.Email)
		}
	}
	for _, m := range um.Available {
		if m != p.Method {
			p.Others = append(p.Others, option{ID: m, Label: methodLabels[m]})
		}
	}
	return p, nil
}

func (wb *Web) mfaPage(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r, r.URL.Query().Get("method"))
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	if p.Method == signin.MethodSetup {
		wb.setupPage(w, r, p, http.StatusOK)
		return
	}
	// A block in force shows before a code is typed.
	wait, err := wb.svc.BlockedFor(r.Context(), "otp", p.Username, httpx.ClientIP(r))
	if err != nil {
		wb.log.Warn("mfa page: read throttles", "err", err)
	}
	if wait > 0 {
		p.Error, p.Blocked = (&signin.BlockedError{RetryAfter: wait}).Error(), true
		httpx.SetRetryAfter(w, wait)
		wb.render(w, r, http.StatusTooManyRequests, "mfa.html", p)
		return
	}
	wb.render(w, r, http.StatusOK, "mfa.html", p)
}

// setupPage shows a new authenticator-app key to a user who must set up a
// method before finishing sign-in.
func (wb *Web) setupPage(w http.ResponseWriter, r *http.Request, p page, status int) {
	if slices.Contains(p.Methods.CanSetUp, signin.MethodApp) {
		enr, err := wb.svc.SetupApp(r.Context(), cookie(r, cookiePending))
		if err != nil {
			wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
			return
		}
		p.Secret, p.QR = enr.Secret, qrURL(enr.QRPNG)
	}
	p.CodeLife = signin.Lifetime(wb.svc.SentCodeTTL(signin.MethodSMS))
	wb.render(w, r, status, "setup.html", p)
}

// setupPhonePost sends a code to the phone a user sets up at sign-in.
func (wb *Web) setupPhonePost(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r, "")
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	phone := r.PostForm.Get("phone")
	if err := wb.svc.SetupPhone(r.Context(), cookie(r, cookiePending), phone, httpx.ClientIP(r)); err != nil {
		p.Error = err.Error()
		wb.setupPage(w, r, p, statusOf(w, err))
		return
	}
	p.Confirm = signin.Mask(phone)
	wb.setupPage(w, r, p, http.StatusOK)
}

// statusOf maps a service error to an HTTP status for the pages.
// serverError is the status and message of a page for an error no
// handler expected: 503 with Retry-After and the reason when the server is
// at capacity or cannot store, else 500 (the details go to the log only).
func (wb *Web) serverError(w http.ResponseWriter, what string, err error) (int, string) {
	if u, ok := httpx.AsUnavailable(err); ok {
		wb.log.Warn(what, "err", err)
		httpx.SetRetryAfter(w, u.RetryAfter())
		return http.StatusServiceUnavailable, u.Error() + " — try again shortly"
	}
	wb.log.Error(what, "err", err)
	return http.StatusInternalServerError, "internal error, try again"
}

// statusOf is the status of a page answering err; it sets Retry-After
// when err says when to come back (blocked, or the server unavailable).
func statusOf(w http.ResponseWriter, err error) int {
	if u, ok := httpx.AsUnavailable(err); ok {
		httpx.SetRetryAfter(w, u.RetryAfter())
		return http.StatusServiceUnavailable
	}
	if b := new(signin.BlockedError); errors.As(err, &b) {
		httpx.SetRetryAfter(w, b.RetryAfter)
	}
	switch {
	case errors.As(err, new(*signin.BlockedError)):
		return http.StatusTooManyRequests
	case errors.As(err, new(*signin.CodeError)), errors.Is(err, signin.ErrBadToken), errors.Is(err, signin.ErrNoEnrolment):
		return http.StatusUnauthorized
	case errors.Is(err, signin.ErrBadInput):
		return http.StatusBadRequest
	case errors.Is(err, signin.ErrNoMethod), errors.Is(err, signin.ErrNotEnabled):
		return http.StatusForbidden
	}
	return http.StatusBadGateway
}

// sendPost sends (or resends) a code for the pending sign-in.
func (wb *Web) sendPost(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r, r.PostForm.Get("method"))
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	to, err := wb.svc.SendCode(r.Context(), cookie(r, cookiePending), p.Method, httpx.ClientIP(r))
	if err != nil {
		p.Error = err.Error()
		wb.render(w, r, statusOf(w, err), "mfa.html", p)
		return
	}
	p.SentTo = to
	wb.render(w, r, http.StatusOK, "mfa.html", p)
}

func (wb *Web) phoneStart(w http.ResponseWriter, r *http.Request, user string) {
	phone := r.PostForm.Get("phone")
	if err := wb.svc.StartPhone(r.Context(), user, phone, httpx.ClientIP(r)); err != nil {
		wb.security(w, r, user, page{Error: err.Error()}, statusOf(w, err))
		return
	}
	wb.security(w, r, user, page{Confirm: signin.Mask(phone)}, http.StatusOK)
}

func (wb *Web) phoneConfirm(w http.ResponseWriter, r *http.Request, user string) {
	if err := wb.svc.ConfirmPhone(r.Context(), user, r.PostForm.Get("code"), httpx.ClientIP(r)); err != nil {
		wb.security(w, r, user, page{Error: err.Error() + " — add the phone again"}, statusOf(w, err))
		return
	}
	wb.security(w, r, user, page{Notice: "Phone set up for text messages and calls."}, http.StatusOK)
}

func (wb *Web) phoneRemove(w http.ResponseWriter, r *http.Request, user string) {
	if err := wb.svc.RemoveMethod(r.Context(), user, signin.SetupPhone, httpx.ClientIP(r)); err != nil {
		wb.security(w, r, user, page{Error: err.Error()}, http.StatusBadRequest)
		return
	}
	wb.security(w, r, user, page{Notice: "Phone removed."}, http.StatusOK)
}

func (wb *Web) outboxPage(w http.ResponseWriter, r *http.Request) {
	msgs, err := wb.Outbox(r.Context())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	wb.render(w, r, http.StatusOK, "outbox.html", page{Outbox: msgs})
}

func qrURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

func (wb *Web) setupPost(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r, "")
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	method := r.PostForm.Get("method")
	sess, err := wb.svc.FinishSetup(r.Context(), cookie(r, cookiePending), method, r.PostForm.Get("code"), httpx.ClientIP(r))
	if err == nil {
		wb.signIn(w, r, p.Username, sess)
		return
	}
	var blocked *signin.BlockedError
	var codeErr *signin.CodeError
	switch {
	case errors.As(err, &blocked):
		httpx.SetRetryAfter(w, blocked.RetryAfter)
		wb.render(w, r, http.StatusTooManyRequests, "login.html", page{Error: err.Error()})
	case errors.As(err, &codeErr), errors.Is(err, signin.ErrNoEnrolment):
		// Start again: a new app key (the one shown is not reused after a
		// wrong code), or the phone number again.
		p.Error = err.Error() + " — start again below"
		wb.setupPage(w, r, p, http.StatusUnauthorized)
	default:
		status, msg := wb.serverError(w, "web setup", err)
		wb.render(w, r, status, "login.html", page{Error: msg})
	}
}

// signIn ends the MFA step: session cookie, and the trusted-browser cookie
// when "Keep me signed in" was ticked.
func (wb *Web) signIn(w http.ResponseWriter, r *http.Request, user, sess string) {
	wb.setCookie(w, r, cookiePending, "", -1)
	// A fresh session cookie on sign-in (never reuse a pre-login value).
	wb.setCookie(w, r, cookieSession, sess, wb.cfg.SessionTTL)
	if r.PostForm.Get("keep") == "on" {
		if tok, err := wb.svc.Trust(r.Context(), user, httpx.ClientIP(r)); err == nil {
			wb.setCookie(w, r, cookieTrust, tok, wb.cfg.TrustFor)
		}
	}
	http.Redirect(w, r, wb.landing(w, r, sess), http.StatusSeeOther)
}

func (wb *Web) mfaPost(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r, r.PostForm.Get("method"))
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	sess, err := wb.svc.VerifyMethod(r.Context(), cookie(r, cookiePending), p.Method, r.PostForm.Get("code"), httpx.ClientIP(r))
	var blocked *signin.BlockedError
	var codeErr *signin.CodeError
	var setup *signin.SetupNeeded
	switch {
	case err == nil:
		wb.signIn(w, r, p.Username, sess)
	case errors.As(err, &setup):
		wb.setCookie(w, r, cookiePending, setup.Pending, wb.cfg.PendingTTL)
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
	case errors.As(err, &blocked):
		httpx.SetRetryAfter(w, blocked.RetryAfter)
		p.Error, p.Blocked = err.Error(), true
		wb.render(w, r, http.StatusTooManyRequests, "mfa.html", p)
	case errors.As(err, &codeErr):
		p.Error = err.Error()
		wb.render(w, r, http.StatusUnauthorized, "mfa.html", p)
	case errors.Is(err, signin.ErrBadToken), errors.Is(err, signin.ErrNoMethod), errors.Is(err, signin.ErrNotEnabled), errors.Is(err, signin.ErrSetupRequired):
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
	default:
		var status int
		status, p.Error = wb.serverError(w, "web verify", err)
		wb.render(w, r, status, "mfa.html", p)
	}
}

// signedIn passes the session's user to next, or sends the browser to
// the sign-in page.
func (wb *Web) signedIn(next func(w http.ResponseWriter, r *http.Request, user string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, err := wb.svc.Session(r.Context(), cookie(r, cookieSession))
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		next(w, r, user)
	}
}

// security renders the Security page of user with p's extras.
func (wb *Web) security(w http.ResponseWriter, r *http.Request, user string, p page, status int) {
	um, err := wb.svc.Methods(r.Context(), user)
	if err != nil {
		wb.log.Error("security page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Username, p.Methods, p.Model = user, um, um.Camera.DisplayName()
	p.CodeLife = signin.Lifetime(wb.svc.SentCodeTTL(signin.MethodSMS))
	wb.render(w, r, status, "security.html", p)
}

func (wb *Web) securityPage(w http.ResponseWriter, r *http.Request) {
	wb.signedIn(func(w http.ResponseWriter, r *http.Request, user string) {
		wb.security(w, r, user, page{}, http.StatusOK)
	})(w, r)
}

func (wb *Web) appStart(w http.ResponseWriter, r *http.Request, user string) {
	enr, err := wb.svc.StartApp(r.Context(), user)
	if err != nil {
		wb.security(w, r, user, page{Error: err.Error()}, http.StatusBadRequest)
		return
	}
	wb.security(w, r, user, page{Secret: enr.Secret, QR: qrURL(enr.QRPNG)}, http.StatusOK)
}

func (wb *Web) appConfirm(w http.ResponseWriter, r *http.Request, user string) {
	err := wb.svc.ConfirmApp(r.Context(), user, r.PostForm.Get("code"), httpx.ClientIP(r))
	if err != nil {
		status := http.StatusUnauthorized
		if errors.As(err, new(*signin.BlockedError)) {
			status = statusOf(w, err)
		}
		wb.security(w, r, user, page{Error: err.Error() + " — set up again"}, status)
		return
	}
	wb.security(w, r, user, page{Notice: "Authenticator app set up."}, http.StatusOK)
}

func (wb *Web) appRemove(w http.ResponseWriter, r *http.Request, user string) {
	if err := wb.svc.RemoveMethod(r.Context(), user, signin.MethodApp, httpx.ClientIP(r)); err != nil {
		wb.security(w, r, user, page{Error: err.Error()}, http.StatusBadRequest)
		return
	}
	wb.security(w, r, user, page{Notice: "Authenticator app removed."}, http.StatusOK)
}

func (wb *Web) backupNew(w http.ResponseWriter, r *http.Request, user string) {
	codes, err := wb.svc.NewBackupCodes(r.Context(), user, httpx.ClientIP(r))
	if err != nil {
		status, msg := wb.serverError(w, "backup codes", err)
		wb.security(w, r, user, page{Error: msg}, status)
		return
	}
	wb.security(w, r, user, page{Codes: codes}, http.StatusOK)
}

func (wb *Web) passwordPost(w http.ResponseWriter, r *http.Request, user string) {
	sess, err := wb.svc.ChangePassword(r.Context(), user, r.PostForm.Get("current"), r.PostForm.Get("new"), httpx.ClientIP(r))
	if err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*signin.BlockedError)) {
			status = statusOf(w, err)
		}
		wb.security(w, r, user, page{Error: err.Error()}, status)
		return
	}
	wb.setCookie(w, r, cookieTrust, "", -1)
	wb.setCookie(w, r, cookieSession, sess, wb.cfg.SessionTTL)
	wb.security(w, r, user, page{Notice: "Password changed. Other sessions and trusted browsers were signed out."}, http.StatusOK)
}

func (wb *Web) home(w http.ResponseWriter, r *http.Request) {
	st, err := wb.svc.Staff(r.Context(), cookie(r, cookieSession))
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	// The console's link only for the roles it opens to.
	wb.render(w, r, http.StatusOK, "home.html", page{Username: st.Username, IsAdmin: st.Role.Console()})
}

func (wb *Web) logout(w http.ResponseWriter, r *http.Request) {
	wb.svc.Logout(r.Context(), cookie(r, cookieSession), httpx.ClientIP(r))
	wb.setCookie(w, r, cookieSession, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= 2*time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return d.String()
}
