package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// Lost or stolen cameras in the console: Report lost (fleet, security,
// admin: model.PermReportLost) from the camera's page or, for security
// staff who do not see cameras, from the officer's row of the user page;
// Found (admin: model.PermFound) from the camera's page. Both behind a
// confirmation, like every destructive camera action.

// registerLost adds the report and found pages and actions; their paths
// are more specific than the camera actions' {action}, so they win.
func (wb *Web) registerLost(mux *http.ServeMux, h func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /admin/cameras/{serial}/report-lost", h(wb.console(model.PermReportLost, wb.lostConfirm)))
	mux.Handle("POST /admin/cameras/{serial}/report-lost", h(wb.csrf(wb.console(model.PermReportLost, wb.lostPost))))
	mux.Handle("GET /admin/cameras/{serial}/found", h(wb.console(model.PermFound, wb.foundConfirm)))
	mux.Handle("POST /admin/cameras/{serial}/found", h(wb.csrf(wb.console(model.PermFound, wb.foundPost))))
}

// lostActions are the report and found actions of camera c that st may
// take.
func lostActions(c model.CameraRow, st signin.Staff) []cameraAction {
	base := "/admin/cameras/" + url.PathEscape(c.Serial) + "/"
	switch {
	case c.Lost == nil && st.Can(model.PermReportLost):
		return []cameraAction{{Label: "Report lost or stolen", Href: base + "report-lost", Danger: true}}
	case c.Lost != nil && st.Can(model.PermFound):
		return []cameraAction{{Label: "Found", Href: base + "found"}}
	}
	return nil
}

// lostNext says what a lost camera waits for before it can be found.
func lostNext(c model.CameraRow) string {
	if c.Lost == nil {
		return ""
	}
	if model.CanBeFound(c.Camera) == nil {
		return "It was provisioned again with a new seed: an administrator can now declare it found."
	}
	switch c.State {
	case model.StateWiping:
		return "A wipe waits for its next connection; once the wipe is proven, provision it with a new seed, then an administrator can declare it found."
	case model.StatePending:
		return "A new seed is on its way; once the camera proves it, an administrator can declare it found."
	}
	return "Provision it with a new seed before an administrator can declare it found."
}

// lostBack is where the report's pages lead back to: the camera's page,
// or for staff who do not see cameras, the user page.
func lostBack(st signin.Staff, serial, officer string) string {
	if st.Can(model.PermCameras) {
		return "/admin/cameras/" + url.PathEscape(serial)
	}
	if officer != "" {
		return "/admin/users?q=" + url.QueryEscape(officer)
	}
	return "/admin/users"
}

// lostCamera reads the camera of the path for a report or found page,
// answering the 404 or error page itself (ok false).
func (wb *Web) lostCamera(w http.ResponseWriter, r *http.Request, st signin.Staff) (model.CameraRow, bool) {
	serial := r.PathValue("serial")
	row, err := wb.Fleet.Camera(r.Context(), serial)
	if errors.Is(err, storage.ErrNotFound) {
		wb.renderConsole(w, r, http.StatusNotFound, "forbidden.html", console{Staff: st, Error: "No camera " + serial + "."})
		return row, false
	}
	if err != nil {
		wb.consoleError(w, r, st, "camera", err)
		return row, false
	}
	return row, true
}

// lostConfirmation is the confirmation page of a report of row.
func lostConfirmation(r *http.Request, st signin.Staff, row model.CameraRow, now time.Time) *confirmation {
	cf := &confirmation{Title: fmt.Sprintf("Report camera %s lost or stolen?", row.Serial), Subject: row.Serial,
		Explain: "At once: every code of this camera is refused, its officer is unassigned (they sign in with their other methods), " +
			"and a wipe is queued for when the camera next connects. It stays lost until it is provisioned again with a new seed " +
			"and an administrator declares it found.",
		Button: "Report lost", Action: r.URL.Path, Back: lostBack(st, row.Serial, row.AssignedUser), Danger: true, Reason: model.MaxLostReason}
	v := viewCamera(row, now)
	cf.Detail = append(cf.Detail, v.ModelName+", "+strings.ToLower(v.StateLabel))
	if row.AssignedUser != "" {
		cf.Detail = append(cf.Detail, "Assigned to "+row.AssignedUser+": they lose it as a sign-in method now")
	}
	if row.Lost != nil {
		cf.Detail = append(cf.Detail, "Already reported lost "+row.Lost.At.UTC().Format("2006-01-02 15:04:05 UTC")+" by "+row.Lost.By+": reporting it again changes nothing")
	}
	return cf
}

func (wb *Web) lostConfirm(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	row, ok := wb.lostCamera(w, r, st)
	if !ok {
		return
	}
	wb.renderConsole(w, r, http.StatusOK, "console_confirm.html", console{Staff: st, Section: lostSection(st), Confirm: lostConfirmation(r, st, row, wb.now())})
}

// lostSection is the navigation item the report's pages belong to.
func lostSection(st signin.Staff) string {
	if st.Can(model.PermCameras) {
		return "cameras"
	}
	return "users"
}

func (wb *Web) lostPost(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	serial := r.PathValue("serial")
	// The officer before the report, for the user page of staff who do
	// not see cameras.
	before, _ := wb.Fleet.Camera(r.Context(), serial)
	out, err := wb.Fleet.ReportLost(r.Context(), serial, r.PostForm.Get("reason"), st.Username, httpx.ClientIP(r))
	if errors.Is(err, provisioning.ErrBadReason) {
		row, ok := wb.lostCamera(w, r, st)
		if !ok {
			return
		}
		wb.renderConsole(w, r, http.StatusBadRequest, "console_confirm.html", console{Staff: st, Section: lostSection(st),
			Confirm: lostConfirmation(r, st, row, wb.now()), Error: "Not reported: " + strings.TrimPrefix(err.Error(), provisioning.ErrBadReason.Error()+": ") + "."})
		return
	}
	notice := ""
	if err == nil {
		notice = firstUpper(provisioning.LostMessage(out)) + "."
	}
	if st.Can(model.PermCameras) {
		wb.actionResult(w, r, st, serial, notice, err)
		return
	}
	officer := before.AssignedUser
	if err == nil && out.Officer != "" {
		officer = out.Officer
	}
	r.URL.RawQuery = ""
	if officer != "" {
		r.URL.RawQuery = url.Values{"q": {officer}}.Encode()
	}
	switch {
	case err == nil:
		wb.users(w, r, st, http.StatusOK, console{Notice: notice})
	case errors.Is(err, storage.ErrNotFound):
		wb.users(w, r, st, http.StatusNotFound, console{Error: "No camera " + serial + "."})
	default:
		status, msg := wb.serverError(w, "report lost", err)
		wb.users(w, r, st, status, console{Error: msg})
	}
}

func (wb *Web) foundConfirm(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	row, ok := wb.lostCamera(w, r, st)
	if !ok {
		return
	}
	cf := &confirmation{Title: fmt.Sprintf("Declare camera %s found?", row.Serial), Subject: row.Serial,
		Explain: "Its lost report ends: it can be assigned to an officer again. Say found only once the camera is back in the agency's hands.",
		Button:  "Declare found", Action: r.URL.Path, Back: "/admin/cameras/" + url.PathEscape(row.Serial)}
	if row.Lost != nil {
		cf.Detail = append(cf.Detail, "Reported lost "+row.Lost.At.UTC().Format("2006-01-02 15:04:05 UTC")+" by "+row.Lost.By)
	}
	c := console{Staff: st, Section: "cameras", Confirm: cf}
	if err := model.CanBeFound(row.Camera); err != nil {
		c.Error = "Not yet: " + err.Error() + "."
	}
	wb.renderConsole(w, r, http.StatusOK, "console_confirm.html", c)
}

func (wb *Web) foundPost(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	serial := r.PathValue("serial")
	c, err := wb.Fleet.Found(r.Context(), serial, st.Username, httpx.ClientIP(r))
	wb.actionResult(w, r, st, serial, fmt.Sprintf("Camera %s found: no longer reported lost (seed version %d); it can be assigned again.", serial, c.Version), err)
}
