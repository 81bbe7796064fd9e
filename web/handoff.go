package web

import (
	"context"
	"errors"
	"net/http"
	"regexp"
)

// Handoff is a front door that sends browsers to these pages to sign in
// and takes them back afterwards (the OpenID Connect provider's authorize
// requests). The request's id travels in a cookie through the pages.
type Handoff interface {
	// Describe tells what request id demands of the sign-in.
	Describe(ctx context.Context, id string) (HandoffRequest, error)
	// Finish answers request id with the session when the session meets
	// the request's demands, and returns where to send the browser;
	// ErrReauthenticate when the user must sign in (again) first.
	Finish(ctx context.Context, id, session string) (string, error)
	// Owns tells whether r comes from the browser that made request id:
	// only that browser may sign it in (no one can hand a signed-in
	// officer a link that signs the officer into someone else's request).
	Owns(r *http.Request, id string) bool
}

// HandoffRequest is what a handed-off sign-in demands.
type HandoffRequest struct {
	// Client names the application the user signs in to.
	Client string
	// TrustAllowed is false when "Keep me signed in" must not skip the
	// second factor (the request asks for a fresh sign-in or for MFA).
	TrustAllowed bool
	// RedirectOrigin is the origin the browser returns to (added to the
	// pages' form-action so the sign-in forms may end there).
	RedirectOrigin string
}

// ErrReauthenticate says an existing session does not meet a handed-off
// request's demands: the user signs in with password and second factor.
var ErrReauthenticate = errors.New("sign in again with your password and second factor")

// ErrOtherBrowser refuses a handed-off request opened in a browser other
// than the one the application sent to camotp.
var ErrOtherBrowser = errors.New("this sign-in was started in another browser: start again from the application, in this browser")

// ErrHandoff is a handed-off request that is unknown or expired.
var ErrHandoff = errors.New("the application's sign-in request is unknown or expired: start again from the application")

// cookieHandoff carries a handed-off request's id through the pages.
const cookieHandoff = "camotp_handoff"

// handoffID is the browser's handed-off request, "" when none.
func (wb *Web) handoffID(r *http.Request) string {
	if wb.Handoff == nil {
		return ""
	}
	return cookie(r, cookieHandoff)
}

// landing is where the browser goes once sess is signed in: the
// handed-off request's client, else the home page.
func (wb *Web) landing(w http.ResponseWriter, r *http.Request, sess string) string {
	id := wb.handoffID(r)
	if id == "" {
		return "/home"
	}
	wb.setCookie(w, r, cookieHandoff, "", -1)
	to, err := wb.Handoff.Finish(r.Context(), id, sess)
	if err != nil {
		wb.log.Warn("hand sign-in back", "err", err)
		return "/home"
	}
	return to
}

// SessionCookie is the name of the cookie holding a browser's session
// token, for front doors on the same origin (end-session signs it out).
const SessionCookie = cookieSession

var originRe = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// allowOrigin lets the page's forms end at origin: a sign-in form's answer
// redirects to the application, and browsers hold redirects after a form
// to its form-action. Every other directive stays as strict.
func allowOrigin(w http.ResponseWriter, origin string) {
	if originRe.MatchString(origin) {
		w.Header().Set("Content-Security-Policy", csp("'self' "+origin))
	}
}
