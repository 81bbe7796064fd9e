package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// The fleet console: /admin and the pages under it. Every page and action
// names the permission it needs (model.Permission); console checks the
// session (a role that opens the console, a second factor passed) and the
// permission before the handler runs, and answers a proper 403 page
// otherwise. Actions are POSTs with the CSRF token, each behind a
// confirmation page (GET of the same path) and answering with the result
// on the page it came from.

// Fleet is what the console's camera pages read and do
// (provisioning.Fleet): the same operations, checks and audit rows as the
// admin API's.
type Fleet interface {
	Cameras(ctx context.Context, q model.CameraQuery) (model.CameraPage, error)
	Camera(ctx context.Context, serial string) (model.CameraRow, error)
	States(ctx context.Context) (map[string]int, error)
	History(ctx context.Context, serial string, limit int) ([]model.AuditEntry, error)
	Officers(ctx context.Context, search string, limit int) (model.UserPage, error)
	Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error)
	Assign(ctx context.Context, serial, user, actor, ip string) error
	Unassign(ctx context.Context, serial, actor, ip string) error
	CheckAssignments(ctx context.Context, rows []provisioning.BulkRow, officersOnly bool) ([]provisioning.BulkRow, error)
	ApplyAssignments(ctx context.Context, rows []provisioning.BulkRow, officersOnly bool, actor, ip string) ([]provisioning.BulkRow, error)
	ReportLost(ctx context.Context, serial, reason, actor, ip string) (model.LostOutcome, error)
	Found(ctx context.Context, serial, actor, ip string) (model.Camera, error)
}

// frame is what the layout shows around every page: the title, the
// agency, and in the console its navigation.
type frame struct {
	Title string
	Org   string
	Wide  bool
	Nav   []navItem
}

// navItem is a link of the console's navigation.
type navItem struct {
	Label, Href string
	Current     bool
}

// Frame is the layout of a sign-in page titled title.
func (p page) Frame(title string) frame { return frame{Title: title, Org: p.Org} }

// console is the data of a console page.
type console struct {
	CSRF    string
	Org     string
	Error   string
	Notice  string
	Staff   signin.Staff
	Section string // the navigation item the page belongs to
	Now     time.Time

	Overview  *overview
	Cameras   *cameraList
	Camera    *cameraDetail
	Confirm   *confirmation
	Pick      *officerPick
	Bulk      *bulkPage
	Users     *userList
	Policy    *policyPage
	Audit     *auditList
	Verdict   *model.AuditVerdict
	Forbidden string
}

// sections are the console's navigation, with the permission each needs.
var sections = []struct {
	id, label, href string
	perm            model.Permission
}{
	{"overview", "Overview", "/admin", model.PermConsole},
	{"cameras", "Cameras", "/admin/cameras", model.PermCameras},
	{"assignments", "Bulk assignment", "/admin/assignments", model.PermCameras},
	{"users", "Users", "/admin/users", model.PermUsers},
	{"policy", "Policy", "/admin/policy", model.PermPolicy},
	{"audit", "Audit log", "/admin/audit", model.PermAudit},
}

// Frame is the layout of a console page titled title: wide, with the
// sections the staff member may open (narrow, as the sign-in pages, for
// someone who may open none: the 403 page of an officer).
func (c console) Frame(title string) frame {
	f := frame{Title: title, Org: c.Org}
	for _, s := range sections {
		if c.Staff.Can(s.perm) {
			f.Nav = append(f.Nav, navItem{Label: s.label, Href: s.href, Current: s.id == c.Section})
		}
	}
	if len(f.Nav) > 0 { // a staff member's: wide, for the tables
		f.Nav = append(f.Nav, navItem{Label: "Home", Href: "/home"})
		f.Wide = true
	}
	return f
}

// Can tells whether the page's staff member has permission p (for the
// templates: links to what they may open).
func (c console) Can(p string) bool { return c.Staff.Can(model.Permission(p)) }

// renderConsole renders a console page.
func (wb *Web) renderConsole(w http.ResponseWriter, r *http.Request, status int, name string, c console) {
	c.CSRF, c.Org, c.Now = wb.csrfToken(w, r), wb.OrgName, wb.now()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := wb.tmpl.ExecuteTemplate(w, name, c); err != nil {
		wb.log.Error("render page", "page", name, "err", err)
	}
}

// forbidden answers the 403 page saying why.
func (wb *Web) forbidden(w http.ResponseWriter, r *http.Request, st signin.Staff, why string) {
	wb.renderConsole(w, r, http.StatusForbidden, "forbidden.html", console{Staff: st, Forbidden: why})
}

// consoleError answers a console page that failed on the server: 503 with
// the reason when the store cannot answer now, else 500 (details logged).
func (wb *Web) consoleError(w http.ResponseWriter, r *http.Request, st signin.Staff, what string, err error) {
	status, msg := wb.serverError(w, what, err)
	wb.renderConsole(w, r, status, "forbidden.html", console{Staff: st, Error: msg})
}

// staffHandler is a console page or action: it gets the signed-in staff
// member.
type staffHandler func(w http.ResponseWriter, r *http.Request, st signin.Staff)

// console lets the request through to next when its session is a staff
// member's with permission p: to the sign-in page without a session, a
// 403 page when the role or the session does not allow it.
func (wb *Web) console(p model.Permission, next staffHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := wb.svc.ConsoleSession(r.Context(), cookie(r, cookieSession))
		switch {
		case errors.Is(err, signin.ErrBadToken):
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		case errors.Is(err, signin.ErrNotAdmin):
			wb.forbidden(w, r, st, "The administration pages are for administrators (the administrator, fleet manager and security officer roles). Your account is an officer's: it signs in, and has nothing to administer.")
		case errors.Is(err, signin.ErrAdminNeedsMFA):
			wb.forbidden(w, r, st, firstUpper(err.Error())+".")
		case err != nil:
			wb.consoleError(w, r, st, "console session", err)
		case !st.Can(p):
			wb.forbidden(w, r, st, "Your role ("+st.Role.Label()+") does not include this page. Ask an administrator if you need it.")
		default:
			next(w, r, st)
		}
	}
}

// now is the pages' clock.
func (wb *Web) now() time.Time {
	if wb.Now != nil {
		return wb.Now()
	}
	return time.Now()
}

// registerConsole adds the console's pages and actions to mux; h wraps
// each handler with the headers and cross-origin protection.
func (wb *Web) registerConsole(mux *http.ServeMux, h func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /admin", h(wb.console(model.PermConsole, wb.overviewPage)))
	mux.Handle("GET /admin/users", h(wb.console(model.PermUsers, wb.usersPage)))
	mux.Handle("GET /admin/users/{username}/{action}", h(wb.console(model.PermUsers, wb.userConfirm)))
	mux.Handle("POST /admin/users/{username}/{action}", h(wb.csrf(wb.console(model.PermUsers, wb.userAction))))
	mux.Handle("GET /admin/policy", h(wb.console(model.PermPolicy, wb.policyPage)))
	mux.Handle("POST /admin/policy", h(wb.csrf(wb.console(model.PermPolicy, wb.policyPost))))
	if wb.Audit != nil {
		mux.Handle("GET /admin/audit", h(wb.console(model.PermAudit, wb.auditPage)))
		mux.Handle("GET /admin/audit/export", h(wb.console(model.PermAudit, wb.auditExport)))
		mux.Handle("POST /admin/audit/verify", h(wb.csrf(wb.console(model.PermAudit, wb.auditVerify))))
	}
	if wb.Fleet != nil {
		mux.Handle("GET /admin/cameras", h(wb.console(model.PermCameras, wb.camerasPage)))
		mux.Handle("GET /admin/cameras/{serial}", h(wb.console(model.PermCameras, wb.cameraPage)))
		mux.Handle("GET /admin/cameras/{serial}/{action}", h(wb.console(model.PermCameras, wb.cameraConfirm)))
		mux.Handle("POST /admin/cameras/{serial}/{action}", h(wb.csrf(wb.console(model.PermCameras, wb.cameraAction))))
		wb.registerLost(mux, h)
		mux.Handle("GET /admin/cameras/{serial}/assign", h(wb.console(model.PermCameras, wb.assignPage)))
		mux.Handle("POST /admin/cameras/{serial}/assign", h(wb.csrf(wb.console(model.PermCameras, wb.assignPost))))
		mux.Handle("GET /admin/assignments", h(wb.console(model.PermCameras, wb.bulkPage)))
		// The session and role first: an upload is read only for a user
		// who may make one.
		mux.Handle("POST /admin/assignments/preview", h(wb.console(model.PermCameras, wb.csrfUpload(wb.bulkPreview))))
		mux.Handle("POST /admin/assignments/apply", h(wb.console(model.PermCameras, wb.csrfUpload(wb.bulkApply))))
	}
}

// overview is the console's landing page: what the staff member's role
// covers, in numbers.
type overview struct {
	States  []stateCount
	Cameras int
	Online  int
}

// stateCount is the number of cameras in one state.
type stateCount struct {
	State model.CameraState
	Label string
	N     int
	Href  string
}

func (wb *Web) overviewPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	c := console{Staff: st, Section: "overview", Overview: &overview{}}
	if st.Can(model.PermCameras) && wb.Fleet != nil {
		states, err := wb.Fleet.States(r.Context())
		if err != nil {
			wb.consoleError(w, r, st, "overview", err)
			return
		}
		online, err := wb.Fleet.Cameras(r.Context(), model.CameraQuery{Online: model.Yes, Size: 1})
		if err != nil {
			wb.consoleError(w, r, st, "overview", err)
			return
		}
		o := c.Overview
		o.Online = online.Total
		byState := map[model.CameraState]int{}
		for k, n := range states { // a camera with an operation in flight counts as "pending:<op>"
			switch k {
			case "pending:" + string(model.OpProvision):
				byState[model.StatePending] += n
			case "pending:" + string(model.OpRotate):
				byState[model.StateProvisioned] += n
			case "pending:" + string(model.OpWipe):
				byState[model.StateWiping] += n
			default:
				byState[model.CameraState(k)] += n
			}
		}
		for _, s := range cameraStates {
			o.Cameras += byState[s]
			o.States = append(o.States, stateCount{State: s, Label: stateLabel(s, ""), N: byState[s],
				Href: "/admin/cameras?state=" + url.QueryEscape(string(s))})
		}
	}
	wb.renderConsole(w, r, http.StatusOK, "console_overview.html", c)
}

// pageLinks are the links of a pager: the page numbers around the current
// one, each with its URL.
type pageLinks struct {
	Page, Pages, Total, From, To int
	First, Prev, Next, Last      string
}

// pager is the pager of a listing at page of size rows with total rows;
// link makes the URL of a page.
func pager(page, size, total int, link func(int) string) pageLinks {
	pages := max((total+size-1)/size, 1)
	p := pageLinks{Page: page, Pages: pages, Total: total}
	if total > 0 {
		p.From, p.To = min((page-1)*size+1, total), min(page*size, total)
	}
	if page > 1 {
		p.First, p.Prev = link(1), link(min(page-1, pages))
	}
	if page < pages {
		p.Next, p.Last = link(page+1), link(pages)
	}
	return p
}

// atoi is the positive integer s, or def.
func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}

// AuditLog is what the console's audit pages read, and where an export
// is recorded (a storage.Store).
type AuditLog interface {
	Audit(ctx context.Context, e model.AuditEntry) error
	AuditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error)
	AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error
	VerifyAudit(ctx context.Context) (model.AuditVerdict, error)
}
