package web_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// addStaff adds name with role through the admin API and sets up an
// authenticator app for them; it returns the app's key.
func addStaff(t *testing.T, f *testenv.Fleet, name, role string) string {
	t.Helper()
	status, body := testenv.API(t, f.Srv, f.Srv.AdminToken, "POST", "/api/v1/admin/users",
		map[string]string{"username": name, "email": name + "@pd.example", "password": "pw-" + name + "-long", "role": role})
	if status != http.StatusCreated || body["role"] != role && !(role == "user" && body["role"] == "officer") {
		t.Fatalf("add %s (%s): %d %v", name, role, status, body)
	}
	svc := f.Srv.SignIn
	enr, err := svc.StartApp(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Add(30 * time.Second) // a step of its own for every first code
	if err := svc.ConfirmApp(t.Context(), name, testenv.AppCode(t, enr.Secret, f.Clock.Now()), ""); err != nil {
		t.Fatal(err)
	}
	return enr.Secret
}

// signInApp signs name in on a new browser with the password and a code
// of the app whose key is secret.
func signInApp(t *testing.T, f *testenv.Fleet, name, secret string) *browser {
	t.Helper()
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, resp := b.post("/login", url.Values{"username": {name}, "password": {"pw-" + name + "-long"}}, page)
	if resp.Request.URL.Path != "/mfa" {
		t.Fatalf("%s: password step ended at %s", name, resp.Request.URL.Path)
	}
	f.Clock.Add(30 * time.Second) // a fresh step: each code is accepted once
	_, _, resp = b.post("/mfa", url.Values{"code": {testenv.AppCode(t, secret, f.Clock.Now())}}, page)
	if resp.Request.URL.Path != "/home" {
		t.Fatalf("%s: MFA step ended at %s", name, resp.Request.URL.Path)
	}
	return b
}

// postMultipart posts fields and a file (when name is not "") as
// multipart/form-data with the CSRF token of page.
func (b *browser) postMultipart(path string, fields map[string]string, file, content, page string) (int, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		mw.WriteField("csrf", m[1])
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != "" {
		fw, _ := mw.CreateFormFile("file", file)
		io.WriteString(fw, content)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.base+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// consoleRequest is one page or action of the console, and what an
// allowed role gets from it.
type consoleRequest struct {
	method, path string
	form         url.Values // POST form (urlencoded)
	multipart    bool       // POST as multipart, with an empty file
	perm         string     // the permission it needs
	allowed      int        // the status an allowed role gets
}

// consoleRequests are every console route, with requests that change
// nothing when allowed (a refused operation, an unknown camera).
var consoleRequests = []consoleRequest{
	{"GET", "/admin", nil, false, "console", 200},
	{"GET", "/admin/cameras", nil, false, "cameras", 200},
	{"GET", "/admin/cameras?state=provisioned&sort=last-seen&dir=desc", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/BC4-A", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/BC4-A/wipe", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/BC4-A/rotate", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/WF-C/provision", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/BC4-A/unassign", nil, false, "cameras", 200},
	{"GET", "/admin/cameras/WF-C/assign?q=da", nil, false, "cameras", 200},
	{"GET", "/admin/assignments", nil, false, "cameras", 200},
	{"POST", "/admin/cameras/WF-C/rotate", url.Values{}, false, "cameras", 409}, // not provisioned: refused
	{"POST", "/admin/cameras/NOPE/wipe", url.Values{}, false, "cameras", 404},
	{"POST", "/admin/cameras/NOPE/provision", url.Values{}, false, "cameras", 404},
	{"POST", "/admin/cameras/NOPE/unassign", url.Values{}, false, "cameras", 404},
	{"POST", "/admin/cameras/NOPE/assign", url.Values{"user": {"dave"}}, false, "cameras", 404},
	{"POST", "/admin/assignments/preview", nil, true, "cameras", 400}, // an empty file
	{"POST", "/admin/assignments/apply", nil, true, "cameras", 400},   // no rows
	{"GET", "/admin/users", nil, false, "users", 200},
	{"GET", "/admin/users?q=ali&role=officer&size=25", nil, false, "users", 200},
	{"GET", "/admin/users?without=1", nil, false, "users", 200},
	{"GET", "/admin/users/alice/unblock", nil, false, "users", 200},
	{"GET", "/admin/users/alice/reset-mfa", nil, false, "users", 200},
	{"GET", "/admin/users/alice/forget-devices", nil, false, "users", 200},
	{"POST", "/admin/users/nobody/unblock", url.Values{}, false, "users", 404},
	{"POST", "/admin/users/nobody/reset-mfa", url.Values{}, false, "users", 404},
	{"POST", "/admin/users/nobody/forget-devices", url.Values{}, false, "users", 404},
	{"GET", "/admin/policy", nil, false, "policy", 200},
	{"POST", "/admin/policy", url.Values{"require": {"on"}}, false, "policy", 400}, // no method: refused
	{"GET", "/admin/audit", nil, false, "audit", 200},
	{"GET", "/admin/audit?actor=admin&action=camera.*&from=2020-01-01T00:00", nil, false, "audit", 200},
	{"GET", "/admin/audit/export?format=csv", nil, false, "audit", 200},
	{"GET", "/admin/audit/export?format=jsonl&subject=alice", nil, false, "audit", 200},
	{"POST", "/admin/audit/verify", url.Values{}, false, "audit", 200},
	{"GET", "/admin/cameras/BC4-A/report-lost", nil, false, "report-lost", 200},
	{"POST", "/admin/cameras/NOPE/report-lost", url.Values{}, false, "report-lost", 404},
	{"POST", "/admin/cameras/BC4-A/report-lost", url.Values{"reason": {"two\nlines"}}, false, "report-lost", 400}, // refused: nothing changes
	{"POST", "/admin/cameras/BC4-A/report-lost", url.Values{"reason": {strings.Repeat("x", 501)}}, false, "report-lost", 400},
	{"GET", "/admin/cameras/BC4-A/found", nil, false, "found", 200},
	{"POST", "/admin/cameras/BC4-A/found", url.Values{}, false, "found", 409}, // not lost
	{"POST", "/admin/cameras/NOPE/found", url.Values{}, false, "found", 404},
}

// roleAllows says which permissions each role has (model.Role.Can, as
// the product defines the roles).
var roleAllows = map[string]map[string]bool{
	"admin":    {"console": true, "cameras": true, "users": true, "policy": true, "audit": true, "report-lost": true, "found": true},
	"fleet":    {"console": true, "cameras": true, "report-lost": true},
	"security": {"console": true, "users": true, "policy": true, "audit": true, "report-lost": true},
	"user":     {}, // the old name of officer
	"officer":  {},
}

// TestConsoleRoleChecks: every console page and action, for every role:
// the allowed ones answer, the others get the 403 page (an officer gets it
// everywhere under /admin).
func TestConsoleRoleChecks(t *testing.T) {
	f := testenv.NewFleet(t)
	browsers := map[string]*browser{}
	for role := range roleAllows {
		name := "staff-" + role
		browsers[role] = signInApp(t, f, name, addStaff(t, f, name, role))
	}
	for role, allows := range roleAllows {
		b := browsers[role]
		_, home := b.get("/home")
		for _, req := range consoleRequests {
			var status int
			var page string
			switch {
			case req.method == "GET":
				status, page = b.get(req.path)
			case req.multipart:
				status, page = b.postMultipart(req.path, nil, "", "", home)
			default:
				form := url.Values{}
				for k, v := range req.form {
					form[k] = v
				}
				status, page, _ = b.post(req.path, form, home)
			}
			want := http.StatusForbidden
			if allows[req.perm] {
				want = req.allowed
			}
			if status != want {
				t.Errorf("%s: %s %s: %d, want %d", role, req.method, req.path, status, want)
				continue
			}
			if want == http.StatusForbidden && !strings.Contains(page, `id="forbidden"`) {
				t.Errorf("%s: %s %s: 403 without the 403 page:\n%s", role, req.method, req.path, page)
			}
		}
	}
	// Nothing changed: every allowed action above was refused.
	if c, _ := f.Srv.Store.Camera(t.Context(), "WF-C"); c.State != "registered" || c.AssignedUser != "carol" {
		t.Fatalf("WF-C changed: %+v", c)
	}
	if c, _ := f.Srv.Store.Camera(t.Context(), "BC4-A"); c.Lost != nil || c.AssignedUser != "alice" || c.State != "provisioned" {
		t.Fatalf("BC4-A changed: %+v", c)
	}
	if pol, _ := f.Srv.SignIn.Policy(t.Context()); !pol.RequireMFA || len(pol.Methods) != 2 {
		t.Fatalf("policy changed: %+v", pol)
	}
}

// The upload's limits, each just past it: a file over the size bound (read
// by the file parser, then cut by the request bound) and a file over the
// row bound are refused whole with 413, saying the limit; nothing changes.
func TestConsoleUploadLimits(t *testing.T) {
	t.Parallel()
	f := testenv.NewFleet(t)
	b := signInApp(t, f, "fran", addStaff(t, f, "fran", "fleet"))
	_, page := b.get("/admin/assignments")
	rows := func(n int) string {
		var s strings.Builder
		for i := range n {
			s.WriteString("BC4-A,u" + strconv.Itoa(i) + "\n")
		}
		return s.String()
	}
	for _, tc := range []struct {
		name, content string
		status        int
		says          string
	}{
		{"over the file bound", strings.Repeat("x", provisioning.MaxBulkBytes+1), http.StatusRequestEntityTooLarge, "larger than 512 KiB"},
		{"over the request bound", strings.Repeat("x", 2*provisioning.MaxBulkBytes+128<<10), http.StatusRequestEntityTooLarge, "larger than 512 KiB"},
		{"over the row bound", rows(provisioning.MaxBulkRows + 1), http.StatusRequestEntityTooLarge, "more than 10000 rows"},
		{"at the row bound", rows(provisioning.MaxBulkRows), http.StatusOK, "cannot be applied"}, // BC4-A on every row
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.postMultipart("/admin/assignments/preview", nil, "f.csv", tc.content, page)
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d, want %d saying %q:\n%.600s", status, tc.status, tc.says, body)
			}
		})
	}
	if c, _ := f.Srv.Store.Camera(t.Context(), "BC4-A"); c.AssignedUser != "alice" {
		t.Fatalf("BC4-A assigned to %q", c.AssignedUser)
	}
}

// The listings' bounds: a page size outside the offered ones is the
// default, a search longer than 100 bytes is cut, a page past the last is
// empty, never an error.
func TestConsoleQueryBounds(t *testing.T) {
	t.Parallel()
	f := testenv.NewFleet(t)
	b := signInApp(t, f, "chief", addStaff(t, f, "chief", "admin"))
	for _, c := range []struct {
		path, says string
	}{
		{"/admin/cameras?size=100000", "Cameras 1–3 of 3"},
		{"/admin/cameras?q=" + strings.Repeat("B", 10_000), "No camera matches."},
		{"/admin/cameras?q=" + strings.Repeat("é", 60), `value="` + strings.Repeat("é", 50) + `"`}, // cut on a character
		{"/admin/cameras?page=999999", "Cameras 1–3 of 3"},                                         // the last page
		{"/admin/cameras?sort=bogus&dir=sideways&state=melted&online=perhaps", "Cameras 1–3 of 3"},
		{"/admin/users?size=7&page=-1", "Users 1–5 of 5"},
		{"/admin/users?page=40", "Users 1–5 of 5"},
		{"/admin/audit?size=100000&before=-5&after=abc", `<option value="50" selected>`},
		{"/admin/audit?from=yesterday", "is not a time"},
	} {
		status, page := b.get(c.path)
		if status != http.StatusOK || !strings.Contains(page, c.says) {
			t.Errorf("%.80s: %d, want 200 saying %q", c.path, status, c.says)
		}
	}
}

// A camera is its holder's second factor, and a reset of MFA leaves an
// account to its password: so neither is a fleet or security user's to do
// to a staff account, nor anyone's to their own (found by review: a fleet
// user gave a camera to an admin; a security user reset an admin's MFA,
// then enrolled a new app with the admin's password alone). An admin can.
func TestConsoleStaffAccountsNeedAnAdmin(t *testing.T) {
	f := testenv.NewFleet(t)
	fleetB := signInApp(t, f, "fran", addStaff(t, f, "fran", "fleet"))
	secB := signInApp(t, f, "sec", addStaff(t, f, "sec", "security"))
	adminB := signInApp(t, f, "chief", addStaff(t, f, "chief", "admin"))
	testenv.Camera(t, f.Srv, "EVIL-1", device.Body4)
	testenv.Camera(t, f.Srv, "EVIL-2", device.Body4)

	// A fleet user: no camera for the admin or themselves, one file or one by one.
	_, home := fleetB.get("/home")
	for _, who := range []string{"chief", "fran", "sec"} {
		if status, _, _ := fleetB.post("/admin/cameras/EVIL-1/assign", url.Values{"user": {who}}, home); status != http.StatusForbidden {
			t.Errorf("fleet user assigning EVIL-1 to %s: %d, want 403", who, status)
		}
	}
	if status, page, _ := fleetB.post("/admin/assignments/apply", url.Values{"rows": {provisioning.EncodeRows([]provisioning.BulkRow{{Line: 1, Serial: "EVIL-2", Username: "fran"}})}}, home); status == http.StatusOK {
		t.Errorf("fleet user bulk-assigning EVIL-2 to themselves: %d\n%s", status, page)
	}
	for _, sn := range []string{"EVIL-1", "EVIL-2"} {
		if c, _ := f.Srv.Store.Camera(t.Context(), sn); c.AssignedUser != "" {
			t.Fatalf("%s assigned to %s by a fleet user", sn, c.AssignedUser)
		}
	}
	// An officer is still theirs to equip.
	if status, _, _ := fleetB.post("/admin/cameras/EVIL-1/assign", url.Values{"user": {"dave"}}, home); status != http.StatusOK {
		t.Fatalf("fleet user assigning EVIL-1 to an officer: %d", status)
	}

	// A security user: no reset or forget on staff accounts or their own;
	// an officer's is theirs; unblock stays open.
	_, home = secB.get("/home")
	for _, tc := range []struct{ user, action string }{
		{"chief", "reset-mfa"}, {"chief", "forget-devices"}, {"fran", "reset-mfa"}, {"sec", "reset-mfa"}, {"sec", "forget-devices"},
	} {
		if status, _ := secB.get("/admin/users/" + tc.user + "/" + tc.action); status != http.StatusForbidden {
			t.Errorf("security user's confirmation of %s on %s: %d, want 403", tc.action, tc.user, status)
		}
		if status, _, _ := secB.post("/admin/users/"+tc.user+"/"+tc.action, url.Values{}, home); status != http.StatusForbidden {
			t.Errorf("security user's %s on %s: %d, want 403", tc.action, tc.user, status)
		}
	}
	if um, err := f.Srv.SignIn.Methods(t.Context(), "chief"); err != nil || len(um.Available) == 0 {
		t.Fatalf("the admin's methods after refused resets: %+v %v", um, err)
	}
	if status, _, _ := secB.post("/admin/users/alice/reset-mfa", url.Values{}, home); status != http.StatusOK {
		t.Fatalf("security user resetting an officer's MFA: %d", status)
	}
	if status, _, _ := secB.post("/admin/users/chief/unblock", url.Values{}, home); status != http.StatusOK {
		t.Fatalf("security user unblocking the admin: %d", status)
	}

	// An admin can do both to staff accounts — not to their own.
	_, home = adminB.get("/home")
	if status, _, _ := adminB.post("/admin/cameras/EVIL-2/assign", url.Values{"user": {"fran"}}, home); status != http.StatusOK {
		t.Fatalf("admin assigning EVIL-2 to a fleet user: %d", status)
	}
	if status, _, _ := adminB.post("/admin/users/sec/reset-mfa", url.Values{}, home); status != http.StatusOK {
		t.Fatalf("admin resetting a security user's MFA: %d", status)
	}
	if status, _, _ := adminB.post("/admin/users/chief/forget-devices", url.Values{}, home); status != http.StatusForbidden {
		t.Fatalf("admin forgetting their own devices: %d, want 403", status)
	}
}
