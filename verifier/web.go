package verifier

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/httpx"
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
	svc  *Service
	tmpl *template.Template
	// SecureCookies forces the Secure flag (behind a TLS-terminating proxy);
	// it is always set on requests that arrived over TLS.
	SecureCookies bool
}

// NewWeb returns the sign-in web UI.
func NewWeb(svc *Service) (*Web, error) {
	t, err := template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Web{svc: svc, tmpl: t}, nil
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
	mux.Handle("GET /home", h(wb.home))
	mux.Handle("POST /logout", h(wb.csrf(wb.logout)))
}

func headers(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
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
		c := cookie(r, cookieCSRF)
		f := r.PostForm.Get("csrf")
		if c == "" || subtle.ConstantTimeCompare([]byte(c), []byte(f)) != 1 {
			http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// page is the data every template gets.
type page struct {
	CSRF     string
	Error    string
	Username string
	Model    string
	HowTo    []string
	TrustFor string
}

func (wb *Web) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CSRF = wb.csrfToken(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := wb.tmpl.ExecuteTemplate(w, name, p); err != nil {
		wb.svc.log.Error("render page", "page", name, "err", err)
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
	wb.render(w, r, http.StatusOK, "login.html", page{})
}

func (wb *Web) loginPost(w http.ResponseWriter, r *http.Request) {
	user := r.PostForm.Get("username")
	res, err := wb.svc.Login(r.Context(), user, r.PostForm.Get("password"), httpx.ClientIP(r), cookie(r, cookieTrust))
	var blocked *BlockedError
	switch {
	case err == nil && res.Session != "":
		wb.setCookie(w, r, cookieSession, res.Session, wb.svc.cfg.SessionTTL)
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	case err == nil:
		wb.setCookie(w, r, cookiePending, res.Pending, wb.svc.cfg.PendingTTL)
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
	case errors.As(err, &blocked):
		wb.render(w, r, http.StatusTooManyRequests, "login.html", page{Error: err.Error(), Username: user})
	case errors.Is(err, ErrBadCredentials):
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error(), Username: user})
	case errors.Is(err, ErrNoMethod):
		wb.render(w, r, http.StatusForbidden, "login.html", page{Error: err.Error(), Username: user})
	default:
		wb.svc.log.Error("web login", "err", err)
		wb.render(w, r, http.StatusInternalServerError, "login.html", page{Error: "internal error, try again"})
	}
}

func (wb *Web) mfaData(r *http.Request) (page, error) {
	user, model, err := wb.svc.Pending(r.Context(), cookie(r, cookiePending))
	if err != nil {
		return page{}, err
	}
	return page{Username: user, Model: model.DisplayName(), HowTo: device.Model(model).HowTo(),
		TrustFor: humanDuration(wb.svc.cfg.TrustFor)}, nil
}

func (wb *Web) mfaPage(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r)
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	wb.render(w, r, http.StatusOK, "mfa.html", p)
}

func (wb *Web) mfaPost(w http.ResponseWriter, r *http.Request) {
	p, err := wb.mfaData(r)
	if err != nil {
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
		return
	}
	pending := cookie(r, cookiePending)
	sess, err := wb.svc.Verify(r.Context(), pending, r.PostForm.Get("code"), httpx.ClientIP(r))
	var blocked *BlockedError
	var codeErr *CodeError
	switch {
	case err == nil:
		wb.setCookie(w, r, cookiePending, "", -1)
		// A fresh session cookie on sign-in (never reuse a pre-login value).
		wb.setCookie(w, r, cookieSession, sess, wb.svc.cfg.SessionTTL)
		if r.PostForm.Get("keep") == "on" {
			if tok, err := wb.svc.Trust(r.Context(), p.Username, httpx.ClientIP(r)); err == nil {
				wb.setCookie(w, r, cookieTrust, tok, wb.svc.cfg.TrustFor)
			}
		}
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	case errors.As(err, &blocked):
		p.Error = err.Error()
		wb.render(w, r, http.StatusTooManyRequests, "mfa.html", p)
	case errors.As(err, &codeErr):
		p.Error = err.Error()
		wb.render(w, r, http.StatusUnauthorized, "mfa.html", p)
	case errors.Is(err, ErrBadToken), errors.Is(err, ErrNoMethod):
		wb.render(w, r, http.StatusUnauthorized, "login.html", page{Error: err.Error()})
	default:
		wb.svc.log.Error("web verify", "err", err)
		p.Error = "internal error, try again"
		wb.render(w, r, http.StatusInternalServerError, "mfa.html", p)
	}
}

func (wb *Web) home(w http.ResponseWriter, r *http.Request) {
	user, err := wb.svc.Session(r.Context(), cookie(r, cookieSession))
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	wb.render(w, r, http.StatusOK, "home.html", page{Username: user})
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
