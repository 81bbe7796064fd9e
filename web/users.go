package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/rollover"
	"github.com/camotp/camotp/signin"
)

// methodNames are the MFA methods as the console names them.
var methodNames = map[string]string{
	signin.MethodBodycam: "Body camera",
	signin.MethodApp:     "Authenticator app",
	signin.MethodSMS:     "Text message",
	signin.MethodCall:    "Phone call",
	signin.MethodEmail:   "Email",
	signin.MethodBackup:  "Backup codes",
}

// methodName is the console's name of method m.
func methodName(m string) string {
	if n, ok := methodNames[m]; ok {
		return n
	}
	return m
}

// userList is the console's user page.
type userList struct {
	Search  string
	Role    string
	Without bool
	Roles   []filterOption
	Sizes   []filterOption
	Rows    []userView
	Pager   pageLinks
}

// userView is a user as the page shows them.
type userView struct {
	signin.UserStatus
	RoleLabel      string
	MethodNames    []string
	LastSignIn     string
	LastSignInAt   string
	BlockedUntil   string
	BlockedUntilAt string
	Actions        string // the path of the user's actions
	// CanReset says the viewer may reset the user's MFA and forget their
	// devices (resetRefused).
	CanReset bool
}

// usersQuery reads the user page's query from the URL.
func usersQuery(v url.Values) (model.UserQuery, bool) {
	q := model.UserQuery{Search: clip(v.Get("q"), maxSearch), Page: atoi(v.Get("page"), 1), Size: model.DefaultPageSize}
	for _, r := range model.Roles {
		if v.Get("role") == string(r) {
			q.Role = r
		}
	}
	for _, n := range pageSizes {
		if v.Get("size") == strconv.Itoa(n) {
			q.Size = n
		}
	}
	return q, v.Get("without") == "1"
}

// usersURL is the user page's URL for q.
func usersURL(q model.UserQuery, without bool) string {
	v := url.Values{}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.Role != "" {
		v.Set("role", string(q.Role))
	}
	if without {
		v.Set("without", "1")
	}
	if q.Size != model.DefaultPageSize {
		v.Set("size", strconv.Itoa(q.Size))
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if len(v) == 0 {
		return "/admin/users"
	}
	return "/admin/users?" + v.Encode()
}

func (wb *Web) usersPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	wb.users(w, r, st, http.StatusOK, console{})
}

// users renders the user page for the request's query with c's notice or
// error.
func (wb *Web) users(w http.ResponseWriter, r *http.Request, st signin.Staff, status int, c console) {
	q, without := usersQuery(r.URL.Query())
	page, size := q.Bounds()
	var rows []signin.UserStatus
	var total int
	var err error
	if without {
		rows, total, err = wb.svc.UsersWithoutMFA(r.Context(), page, size)
	} else {
		rows, total, err = wb.svc.Users(r.Context(), q)
		if err == nil && len(rows) == 0 && total > 0 && page > 1 {
			q.Page = (total + size - 1) / size // past the last page: the last
			page = q.Page
			rows, total, err = wb.svc.Users(r.Context(), q)
		}
	}
	if err != nil {
		wb.consoleError(w, r, st, "user page", err)
		return
	}
	now := wb.now()
	l := &userList{Search: q.Search, Role: string(q.Role), Without: without}
	opt := func(val, label, cur string) filterOption { return filterOption{val, label, val == cur} }
	l.Roles = []filterOption{opt("", "Any role", string(q.Role))}
	for _, ro := range model.Roles {
		l.Roles = append(l.Roles, opt(string(ro), ro.Label(), string(q.Role)))
	}
	for _, n := range pageSizes {
		l.Sizes = append(l.Sizes, opt(strconv.Itoa(n), strconv.Itoa(n)+" a page", strconv.Itoa(size)))
	}
	for _, u := range rows {
		role, _ := model.ParseRole(u.Role)
		v := userView{UserStatus: u, RoleLabel: role.Label(), Actions: "/admin/users/" + url.PathEscape(u.Username) + "/",
			CanReset: resetRefused(st, u.Username, role) == ""}
		for _, m := range u.Methods.Available {
			v.MethodNames = append(v.MethodNames, methodName(m))
		}
		v.LastSignIn, v.LastSignInAt = ago(now, u.LastSignIn), stamp(u.LastSignIn)
		if u.Blocked() {
			v.BlockedUntil, v.BlockedUntilAt = "for "+age(u.BlockedUntil.Sub(now)), stamp(&u.BlockedUntil)
		}
		l.Rows = append(l.Rows, v)
	}
	l.Pager = pager(page, size, total, func(n int) string { p := q; p.Page = n; return usersURL(p, without) })
	c.Staff, c.Section, c.Users = st, "users", l
	wb.renderConsole(w, r, status, "console_users.html", c)
}

// userOps are the actions on a user behind a confirmation.
var userOps = map[string]struct {
	question, explain, button string
	danger                    bool
}{
	"unblock":        {"Unblock %s?", "Every block on their attempts ends now, from every address, and their failed attempts and the account's backoff are forgotten: they can sign in again at once.", "Unblock", false},
	"reset-mfa":      {"Reset the MFA of %s?", "Their authenticator app, backup codes and trusted browsers are removed. They set up a method again at their next sign-in; a body camera assigned to them keeps working.", "Reset MFA", true},
	"forget-devices": {"Forget the devices of %s?", "Every session and trusted browser of theirs ends at once, and the methods they registered (authenticator app, phone, backup codes) are removed.", "Forget devices", true},
}

// userActionRefused says why st may not run action name on user, or "":
// resetting MFA or forgetting the devices of a staff account (admin,
// fleet, security) is an administrator's alone, and nobody does it to
// their own account here (either leaves the account to its password
// until a new method is set up).
func (wb *Web) userActionRefused(r *http.Request, st signin.Staff, user, name string) (string, error) {
	if name == "unblock" {
		return "", nil
	}
	role, err := wb.svc.UserRole(r.Context(), user)
	if err != nil {
		return "", err
	}
	return resetRefused(st, user, role), nil
}

// resetRefused says why st may not reset the MFA or forget the devices of
// user (of role), or "" when st may.
func resetRefused(st signin.Staff, user string, role model.Role) string {
	switch {
	case user == st.Username:
		return "You cannot do this to your own account: ask another administrator."
	case role.Staff() && st.Role != model.RoleAdmin:
		return user + " is a staff account (" + string(role) + "): only an administrator can do this."
	}
	return ""
}

func (wb *Web) userConfirm(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	user, name := r.PathValue("username"), r.PathValue("action")
	op, ok := userOps[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if why, err := wb.userActionRefused(r, st, user, name); err == nil && why != "" {
		wb.renderConsole(w, r, http.StatusForbidden, "forbidden.html", console{Staff: st, Error: why})
		return
	}
	if err := wb.svc.CheckUser(r.Context(), user); errors.Is(err, storage.ErrNotFound) {
		wb.renderConsole(w, r, http.StatusNotFound, "forbidden.html", console{Staff: st, Error: "No user " + user + "."})
		return
	} else if err != nil {
		wb.consoleError(w, r, st, "user confirmation", err)
		return
	}
	cf := &confirmation{Title: fmt.Sprintf(op.question, user), Subject: user, Explain: op.explain, Button: op.button,
		Action: r.URL.Path, Back: "/admin/users?q=" + url.QueryEscape(user), Danger: op.danger}
	wb.renderConsole(w, r, http.StatusOK, "console_confirm.html", console{Staff: st, Section: "users", Confirm: cf})
}

func (wb *Web) userAction(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	user, name := r.PathValue("username"), r.PathValue("action")
	if _, ok := userOps[name]; !ok {
		http.NotFound(w, r)
		return
	}
	ip := httpx.ClientIP(r)
	why, err := wb.userActionRefused(r, st, user, name)
	if err == nil && why != "" {
		r.URL.RawQuery = url.Values{"q": {user}}.Encode()
		wb.users(w, r, st, http.StatusForbidden, console{Error: why})
		return
	}
	var notice string
	switch name {
	case "unblock":
		var n int
		n, err = wb.svc.Unblock(r.Context(), user, st.Username, ip)
		notice = user + " is unblocked (" + strconv.Itoa(n) + " counters cleared)."
		if n == 0 {
			notice = user + " was not blocked: nothing to clear."
		}
	case "reset-mfa":
		if err = wb.svc.CheckUser(r.Context(), user); err == nil {
			err = wb.svc.ResetMFA(r.Context(), user, st.Username, ip)
		}
		notice = "MFA of " + user + " reset."
	case "forget-devices":
		if err = wb.svc.CheckUser(r.Context(), user); err == nil {
			err = wb.svc.ForgetDevices(r.Context(), user, st.Username, ip)
		}
		notice = "Devices of " + user + " forgotten: their sessions and trusted browsers ended."
	}
	// The result is shown on the user's row.
	r.URL.RawQuery = url.Values{"q": {user}}.Encode()
	switch {
	case err == nil:
		wb.users(w, r, st, http.StatusOK, console{Notice: notice})
	case errors.Is(err, storage.ErrNotFound):
		wb.users(w, r, st, http.StatusNotFound, console{Error: "No user " + user + "."})
	default:
		status, msg := wb.serverError(w, "user action", err)
		wb.users(w, r, st, status, console{Error: msg})
	}
}

// policyPage is the organisation's policy page.
type policyPage struct {
	Methods    []policyMethod
	RequireMFA bool
	// Rotation is the seed rollover policy and status (nil: not shown).
	Rotation *rollover.Status
}

// policyMethod is one method the organisation may enable.
type policyMethod struct {
	ID, Name string
	Enabled  bool
}

func (wb *Web) policyPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	wb.policy(w, r, st, http.StatusOK, console{})
}

// policy renders the policy page with c's notice or error.
func (wb *Web) policy(w http.ResponseWriter, r *http.Request, st signin.Staff, status int, c console) {
	pol, err := wb.svc.Policy(r.Context())
	if err != nil {
		wb.consoleError(w, r, st, "policy page", err)
		return
	}
	p := &policyPage{RequireMFA: pol.RequireMFA}
	for _, m := range signin.OrgMethods {
		p.Methods = append(p.Methods, policyMethod{ID: m, Name: methodName(m), Enabled: pol.Enabled(m)})
	}
	if wb.Rotation != nil {
		rot, err := wb.Rotation(r.Context())
		if err != nil {
			wb.consoleError(w, r, st, "policy page: rotation", err)
			return
		}
		p.Rotation = &rot
	}
	c.Staff, c.Section, c.Policy = st, "policy", p
	wb.renderConsole(w, r, status, "console_policy.html", c)
}

func (wb *Web) policyPost(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	p := signin.Policy{RequireMFA: r.PostForm.Get("require") == "on", Methods: r.PostForm["method"]}
	if err := wb.svc.SetPolicy(r.Context(), p, st.Username, httpx.ClientIP(r)); err != nil {
		status, msg := http.StatusBadRequest, firstUpper(err.Error())+"."
		if !errors.Is(err, signin.ErrBadInput) {
			status, msg = wb.serverError(w, "set policy", err)
		}
		wb.policy(w, r, st, status, console{Error: msg})
		return
	}
	wb.policy(w, r, st, http.StatusOK, console{Notice: "Policy saved."})
}
