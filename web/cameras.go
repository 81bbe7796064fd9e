package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/signin"
)

// cameraStates are the states a camera can be in, in lifecycle order.
var cameraStates = []model.CameraState{model.StateRegistered, model.StatePending, model.StateProvisioned, model.StateWiping, model.StateWiped}

// stateLabel names a camera's state (and the operation in flight) for
// people.
func stateLabel(s model.CameraState, pending model.Op) string {
	switch {
	case s == model.StateProvisioned && pending == model.OpRotate:
		return "Provisioned, rotating"
	case s == model.StateRegistered:
		return "Registered"
	case s == model.StatePending:
		return "Pending provision"
	case s == model.StateProvisioned:
		return "Provisioned"
	case s == model.StateWiping:
		return "Wiping"
	case s == model.StateWiped:
		return "Wiped"
	}
	return string(s)
}

// stateClass is the badge colour of a state.
func stateClass(s model.CameraState, pending model.Op) string {
	switch {
	case s == model.StateProvisioned && pending == "":
		return "ok"
	case s == model.StateWiped:
		return "off"
	case s == model.StateWiping:
		return "bad"
	case pending != "" || s == model.StatePending:
		return "pend"
	}
	return ""
}

// filterOption is a choice of a filter's select.
type filterOption struct {
	Value, Label string
	Selected     bool
}

// cameraList is the camera listing page.
type cameraList struct {
	Q        model.CameraQuery
	Search   string
	Rows     []cameraView
	Pager    pageLinks
	States   []filterOption
	Models   []filterOption
	Online   []filterOption
	Assigned []filterOption
	Lost     []filterOption
	Sorts    []filterOption
	Sizes    []filterOption
	Desc     bool
	Headers  []sortHeader
}

// sortHeader is a column header that sorts by its column.
type sortHeader struct{ Label, Href, Mark string }

// cameraColumns are the listing's columns, each sorting by itself.
var cameraColumns = []struct {
	label string
	sort  model.CameraSort
}{
	{"Serial", model.SortSerial}, {"Model", model.SortModel}, {"State", model.SortState}, {"Online", model.SortOnline},
	{"Last seen", model.SortLastSeen}, {"Officer", model.SortAssigned}, {"Seed", model.SortSeed}, {"Seed age", model.SortSeedAge},
	{"Clock offset", model.SortOffset}, {"Last sign-in", model.SortLastSignIn},
}

// cameraView is a camera as the pages show it.
type cameraView struct {
	model.CameraRow
	StateLabel, StateClass, ModelName string
	LastSeen, LastSeenAt              string
	SeedAge, SeedAt                   string
	Offset                            string
	LastSignIn, LastSignInAt          string
	// Clock is the camera's last clock report (nil: none; clock.go).
	Clock *clockView
}

// viewCamera is r as the pages show it at now.
func viewCamera(r model.CameraRow, now time.Time) cameraView {
	v := cameraView{CameraRow: r, StateLabel: stateLabel(r.State, r.PendingOp), StateClass: stateClass(r.State, r.PendingOp),
		ModelName: r.Model.DisplayName(), Offset: "—"}
	v.LastSeen, v.LastSeenAt = ago(now, r.LastSeen), stamp(r.LastSeen)
	v.LastSignIn, v.LastSignInAt = ago(now, r.LastSignIn), stamp(r.LastSignIn)
	if r.SeedAt != nil {
		v.SeedAge, v.SeedAt = age(now.Sub(*r.SeedAt)), stamp(r.SeedAt)
	}
	if r.Offset != nil {
		v.Offset = offsetText(*r.Offset)
	}
	return v
}

// offsetText says a clock offset in steps (30 s each on every camera).
func offsetText(o int64) string {
	switch {
	case o == 0:
		return "0 (on time)"
	case o == 1 || o == -1:
		return fmt.Sprintf("%+d step (%+d s)", o, o*30)
	}
	return fmt.Sprintf("%+d steps (%+d s)", o, o*30)
}

// ago says how long before now t was ("never" for nil).
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	if d < time.Minute {
		return "just now"
	}
	return age(d) + " ago"
}

// age says a duration in its largest whole unit.
func age(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return unit(int64(d/time.Hour), "hour")
	}
	return unit(int64(d/(24*time.Hour)), "day")
}

// stamp is t in UTC to the second ("" for nil).
func stamp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// tri reads a yes/no filter.
func tri(s string) model.Tri {
	switch s {
	case "yes":
		return model.Yes
	case "no":
		return model.No
	}
	return model.Any
}

func triValue(t model.Tri) string {
	switch t {
	case model.Yes:
		return "yes"
	case model.No:
		return "no"
	}
	return ""
}

// maxSearch bounds a search typed into a filter.
const maxSearch = 100

// pageSizes are the page sizes the listings offer.
var pageSizes = []int{25, 50, 100, 200}

// cameraQuery reads the listing's query from the URL; anything unknown
// is ignored.
func cameraQuery(v url.Values) model.CameraQuery {
	q := model.CameraQuery{Search: clip(v.Get("q"), maxSearch), Online: tri(v.Get("online")), Assigned: tri(v.Get("assigned")), Lost: tri(v.Get("lost")),
		Sort: model.CameraSort(v.Get("sort")), Desc: v.Get("dir") == "desc", Page: atoi(v.Get("page"), 1), Size: model.DefaultPageSize}
	for _, s := range cameraStates {
		if v.Get("state") == string(s) {
			q.State = s
		}
	}
	for _, m := range device.Models {
		if v.Get("model") == string(m) {
			q.Model = m
		}
	}
	for _, n := range pageSizes {
		if v.Get("size") == strconv.Itoa(n) {
			q.Size = n
		}
	}
	q.Sort = q.SortKey()
	return q
}

// clip cuts s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// cameraURL is the listing's URL for q.
func cameraURL(q model.CameraQuery) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("state", string(q.State))
	set("model", string(q.Model))
	set("online", triValue(q.Online))
	set("assigned", triValue(q.Assigned))
	set("lost", triValue(q.Lost))
	set("q", q.Search)
	if q.SortKey() != model.SortSerial {
		set("sort", string(q.SortKey()))
	}
	if q.Desc {
		set("dir", "desc")
	}
	if q.Size != model.DefaultPageSize {
		set("size", strconv.Itoa(q.Size))
	}
	if q.Page > 1 {
		set("page", strconv.Itoa(q.Page))
	}
	if len(v) == 0 {
		return "/admin/cameras"
	}
	return "/admin/cameras?" + v.Encode()
}

func (wb *Web) camerasPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	q := cameraQuery(r.URL.Query())
	res, err := wb.Fleet.Cameras(r.Context(), q)
	if page, size := q.Bounds(); err == nil && len(res.Cameras) == 0 && res.Total > 0 && page > 1 {
		q.Page = (res.Total + size - 1) / size // past the last page: the last
		res, err = wb.Fleet.Cameras(r.Context(), q)
	}
	if err != nil {
		wb.consoleError(w, r, st, "camera listing", err)
		return
	}
	now := wb.now()
	l := &cameraList{Q: q, Search: q.Search, Desc: q.Desc}
	for _, c := range res.Cameras {
		l.Rows = append(l.Rows, viewCamera(c, now))
	}
	wb.addClocks(r.Context(), l.Rows, now)
	page, size := q.Bounds()
	l.Pager = pager(page, size, res.Total, func(n int) string { p := q; p.Page = n; return cameraURL(p) })
	opt := func(val, label, cur string) filterOption { return filterOption{val, label, val == cur} }
	l.States = []filterOption{opt("", "Any state", string(q.State))}
	for _, s := range cameraStates {
		l.States = append(l.States, opt(string(s), stateLabel(s, ""), string(q.State)))
	}
	l.Models = []filterOption{opt("", "Any model", string(q.Model))}
	for _, m := range device.Models {
		l.Models = append(l.Models, opt(string(m), m.DisplayName(), string(q.Model)))
	}
	l.Online = []filterOption{opt("", "Any", triValue(q.Online)), opt("yes", "Online now", triValue(q.Online)), opt("no", "Offline", triValue(q.Online))}
	l.Assigned = []filterOption{opt("", "Any", triValue(q.Assigned)), opt("yes", "Assigned", triValue(q.Assigned)), opt("no", "Unassigned", triValue(q.Assigned))}
	l.Lost = []filterOption{opt("", "Any", triValue(q.Lost)), opt("yes", "Reported lost", triValue(q.Lost)), opt("no", "Not lost", triValue(q.Lost))}
	for _, n := range pageSizes {
		l.Sizes = append(l.Sizes, opt(strconv.Itoa(n), strconv.Itoa(n)+" a page", strconv.Itoa(size)))
	}
	for _, h := range cameraColumns {
		l.Sorts = append(l.Sorts, opt(string(h.sort), h.label, string(q.Sort)))
		next := q
		next.Sort, next.Page, next.Desc = h.sort, 1, false
		mark := ""
		if q.Sort == h.sort {
			next.Desc = !q.Desc
			mark = " ▲"
			if q.Desc {
				mark = " ▼"
			}
		}
		l.Headers = append(l.Headers, sortHeader{Label: h.label, Href: cameraURL(next), Mark: mark})
	}
	wb.renderConsole(w, r, http.StatusOK, "console_cameras.html", console{Staff: st, Section: "cameras", Cameras: l})
}

// cameraDetail is a camera's page.
type cameraDetail struct {
	View    cameraView
	History []model.AuditEntry
	Actions []cameraAction
	// LostNext says what a lost camera waits for ("" when not lost).
	LostNext string
}

// cameraAction is an action a camera's page offers.
type cameraAction struct {
	Label, Href string
	Danger      bool
}

// historyRows is how many audit rows a camera's page shows.
const historyRows = 50

// cameraOps are the camera actions behind a confirmation, by their path.
var cameraOps = map[string]struct {
	op       model.Op // "" for unassign
	label    string
	question string // %s: the serial
	explain  string
	button   string
	danger   bool
	started  string // the result, %[1]d the version, %[2]s the serial
}{
	"provision": {model.OpProvision, "Provision", "Provision camera %s?", "A new random seed is made and sent to the camera over MQTT, sealed so that only this camera can read it. The camera becomes provisioned when it proves that it holds the seed; until then it verifies no code.", "Provision the camera", false,
		"Provisioning started: version %[1]d was sent to camera %[2]s. It becomes provisioned when the camera proves that it holds the seed."},
	"rotate": {model.OpRotate, "Rotate seed", "Rotate the seed of camera %s?", "A new random seed replaces the current one. The current seed keeps verifying codes until the camera proves that it holds the new one.", "Rotate the seed", false,
		"Seed rotation started: version %[1]d was sent to camera %[2]s. The current seed keeps working until the camera proves the new one."},
	"wipe": {model.OpWipe, "Wipe", "Wipe camera %s?", "The camera's seed stops verifying codes at once and the camera is told to erase it. Its officer cannot sign in with it until it is provisioned again.", "Wipe the camera", true,
		"Wipe started: version %[1]d was sent to camera %[2]s. Its seed no longer verifies codes; it is wiped when the camera confirms."},
	"unassign": {"", "Unassign", "Unassign camera %s?", "The officer can no longer sign in with this camera's codes.", "Unassign the camera", true,
		"Camera %[2]s unassigned."},
}

// actionsOf are the actions the camera's state allows.
func actionsOf(c model.CameraRow) []cameraAction {
	var out []cameraAction
	base := "/admin/cameras/" + url.PathEscape(c.Serial) + "/"
	for _, name := range []string{"provision", "rotate", "wipe"} {
		if c.PublicKey == "" {
			break // imported without an identity: nothing can be sealed to it
		}
		a := cameraOps[name]
		if _, err := model.NextState(c.State, a.op); err == nil {
			out = append(out, cameraAction{Label: a.label, Href: base + name, Danger: a.danger})
		}
	}
	switch {
	case c.Lost != nil: // assigned to nobody, and cannot be
	case c.AssignedUser == "":
		out = append(out, cameraAction{Label: "Assign to an officer", Href: base + "assign"})
	default:
		out = append(out, cameraAction{Label: "Unassign", Href: base + "unassign", Danger: true})
	}
	return out
}

// camera renders a camera's page with c's notice or error.
func (wb *Web) camera(w http.ResponseWriter, r *http.Request, st signin.Staff, serial string, status int, c console) {
	row, err := wb.Fleet.Camera(r.Context(), serial)
	if errors.Is(err, storage.ErrNotFound) {
		c.Staff, c.Error = st, "No camera "+serial+"."
		wb.renderConsole(w, r, http.StatusNotFound, "forbidden.html", c)
		return
	}
	if err != nil {
		wb.consoleError(w, r, st, "camera page", err)
		return
	}
	hist, err := wb.Fleet.History(r.Context(), serial, historyRows)
	if err != nil {
		wb.consoleError(w, r, st, "camera history", err)
		return
	}
	c.Staff, c.Section = st, "cameras"
	c.Camera = &cameraDetail{View: viewCamera(row, wb.now()), History: hist, Actions: append(actionsOf(row), lostActions(row, st)...),
		LostNext: lostNext(row)}
	wb.addClock(r.Context(), &c.Camera.View, wb.now())
	wb.renderConsole(w, r, status, "console_camera.html", c)
}

func (wb *Web) cameraPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	wb.camera(w, r, st, r.PathValue("serial"), http.StatusOK, console{})
}

// confirmation is the page that asks before an action.
type confirmation struct {
	Title, Subject, Explain, Button, Action, Back string
	Danger                                        bool
	Detail                                        []string
	// Reason, when not 0, asks for a reason of at most that many bytes.
	Reason int
}

func (wb *Web) cameraConfirm(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	serial, name := r.PathValue("serial"), r.PathValue("action")
	a, ok := cameraOps[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	row, err := wb.Fleet.Camera(r.Context(), serial)
	if errors.Is(err, storage.ErrNotFound) {
		wb.renderConsole(w, r, http.StatusNotFound, "forbidden.html", console{Staff: st, Error: "No camera " + serial + "."})
		return
	}
	if err != nil {
		wb.consoleError(w, r, st, "camera confirmation", err)
		return
	}
	cf := &confirmation{Title: fmt.Sprintf(a.question, serial), Subject: serial, Explain: a.explain, Button: a.button,
		Action: r.URL.Path, Back: "/admin/cameras/" + url.PathEscape(serial), Danger: a.danger}
	v := viewCamera(row, wb.now())
	cf.Detail = append(cf.Detail, v.ModelName+", "+strings.ToLower(v.StateLabel))
	if row.AssignedUser != "" {
		cf.Detail = append(cf.Detail, "Assigned to "+row.AssignedUser)
	}
	wb.renderConsole(w, r, http.StatusOK, "console_confirm.html", console{Staff: st, Section: "cameras", Confirm: cf})
}

func (wb *Web) cameraAction(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	serial, name := r.PathValue("serial"), r.PathValue("action")
	a, ok := cameraOps[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ip := httpx.ClientIP(r)
	var notice string
	var err error
	var v uint64
	if a.op == "" {
		err = wb.Fleet.Unassign(r.Context(), serial, st.Username, ip)
	} else {
		v, err = wb.Fleet.Start(r.Context(), serial, a.op, st.Username, ip)
	}
	notice = fmt.Sprintf(a.started, v, serial)
	wb.actionResult(w, r, st, serial, notice, err)
}

// actionResult answers a camera action with the camera's page saying
// what happened.
func (wb *Web) actionResult(w http.ResponseWriter, r *http.Request, st signin.Staff, serial, notice string, err error) {
	switch {
	case err == nil:
		wb.camera(w, r, st, serial, http.StatusOK, console{Notice: notice})
	case errors.Is(err, storage.ErrNotFound):
		wb.camera(w, r, st, serial, http.StatusNotFound, console{Error: firstUpper(err.Error()) + "."})
	case errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrExists):
		wb.camera(w, r, st, serial, http.StatusConflict, console{Error: "Not done: " + err.Error() + "."})
	default:
		status, msg := wb.serverError(w, "camera action", err)
		wb.camera(w, r, st, serial, status, console{Error: msg})
	}
}

// firstUpper makes the first letter of s a capital.
func firstUpper(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// officerPick is the page that picks an officer for a camera.
type officerPick struct {
	View     cameraView
	Search   string
	Officers []model.UserRow
	More     bool
}

// pickRows is how many officers the picker lists.
const pickRows = 25

func (wb *Web) assignPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	wb.pick(w, r, st, clip(r.URL.Query().Get("q"), maxSearch), http.StatusOK, console{})
}

// pick renders the officer picker of the camera in the path.
func (wb *Web) pick(w http.ResponseWriter, r *http.Request, st signin.Staff, search string, status int, c console) {
	serial := r.PathValue("serial")
	row, err := wb.Fleet.Camera(r.Context(), serial)
	if errors.Is(err, storage.ErrNotFound) {
		wb.renderConsole(w, r, http.StatusNotFound, "forbidden.html", console{Staff: st, Error: "No camera " + serial + "."})
		return
	}
	if err != nil {
		wb.consoleError(w, r, st, "assign page", err)
		return
	}
	off, err := wb.Fleet.Officers(r.Context(), search, pickRows)
	if err != nil {
		wb.consoleError(w, r, st, "officers", err)
		return
	}
	c.Staff, c.Section = st, "cameras"
	c.Pick = &officerPick{View: viewCamera(row, wb.now()), Search: search, Officers: off.Users, More: off.Total > len(off.Users)}
	wb.renderConsole(w, r, status, "console_assign.html", c)
}

func (wb *Web) assignPost(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	serial, user := r.PathValue("serial"), strings.TrimSpace(r.PostForm.Get("user"))
	if user == "" {
		wb.pick(w, r, st, "", http.StatusBadRequest, console{Error: "Pick an officer first."})
		return
	}
	// A camera is its holder's second factor: only an administrator gives
	// one to a staff account (a fleet manager could otherwise attach a
	// camera they hold to the admin's account).
	if st.Role != model.RoleAdmin {
		role, err := wb.svc.UserRole(r.Context(), user)
		if err == nil && role.Staff() {
			wb.pick(w, r, st, "", http.StatusForbidden, console{Error: "Not assigned: " + user + " is not an officer; only an administrator gives a camera to a staff account."})
			return
		}
	}
	err := wb.Fleet.Assign(r.Context(), serial, user, st.Username, httpx.ClientIP(r))
	switch {
	case err == nil:
		wb.camera(w, r, st, serial, http.StatusOK, console{Notice: "Camera " + serial + " assigned to " + user + "."})
	case errors.Is(err, storage.ErrNotFound):
		wb.pick(w, r, st, "", http.StatusNotFound, console{Error: firstUpper(err.Error()) + "."})
	case errors.Is(err, storage.ErrConflict):
		wb.pick(w, r, st, "", http.StatusConflict, console{Error: "Not assigned: " + err.Error() + "."})
	default:
		status, msg := wb.serverError(w, "assign camera", err)
		wb.pick(w, r, st, "", status, console{Error: msg})
	}
}
