package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// shoot saves the page as name-1280.png and name-390.png (wide and phone
// widths) in $CAMOTP_SCREENSHOTS, when it is set.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CAMOTP_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, w := range []int64{1280, 390} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 900)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s at %d px: %v", name, w, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+strconv.FormatInt(w, 10)+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.ResetViewport()); err != nil {
		t.Fatal(err)
	}
}

// browserSignIn signs name in with the password and a code of the app
// whose key is secret, and waits for the home page.
func browserSignIn(t *testing.T, ctx context.Context, f *testenv.Fleet, name, secret string) {
	t.Helper()
	base := "http://" + f.Srv.HTTPAddr()
	if err := signInPassword(ctx, base, name, "pw-"+name+"-long", "code"); err != nil {
		t.Fatal(err)
	}
	f.Clock.Add(30 * time.Second)
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), testenv.AppCode(t, secret, f.Clock.Now())),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// text is the text of the element matched by sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// mustContain fails t unless the element sel holds each of want.
func mustContain(t *testing.T, ctx context.Context, sel string, want ...string) {
	t.Helper()
	got := text(t, ctx, sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s says %q, want %q in it", sel, got, w)
		}
	}
}

// run runs actions and fails t on an error.
func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserConsoleCameras: a fleet manager finds cameras by filter,
// search, sort and page, opens one, and runs every action through its
// confirmation: rotate (the camera proves the new seed), unassign, assign
// by picking an officer, provision a new camera, wipe. Each result is on
// the page and in the camera's history, written as the admin API writes
// it.
func TestBrowserConsoleCameras(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) { c.OrgName = "Metro Police" })
	secret := addStaff(t, f, "fran", "fleet")
	newCam := testenv.Camera(t, f.Srv, "NEW-1", device.Body4)
	testenv.Agent(t, newCam, "tcp://"+f.Srv.MQTTAddr())
	// alice signs in with her camera: its clock offset and last sign-in.
	if status, body := f.Verify(t, f.Pending(t, "alice"), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != 200 {
		t.Fatalf("alice signs in: %d %v", status, body)
	}
	base := "http://" + f.Srv.HTTPAddr()
	ctx := testenv.Chromium(t)
	browserSignIn(t, ctx, f, "fran", secret)

	// The overview, then the listing.
	run(t, ctx, chromedp.Click(chromedp.ID("admin")), chromedp.WaitVisible(chromedp.ID("card-cameras")))
	mustContain(t, ctx, "#card-cameras", "4", "Provisioned: 2", "Registered: 2")
	if n := count(t, ctx, "#card-users"); n != 0 {
		t.Fatal("a fleet manager is shown the users card")
	}
	shoot(t, ctx, "console-overview")
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras"), chromedp.WaitVisible(chromedp.ID("cameras")))
	mustContain(t, ctx, "#summary", "Cameras 1–4 of 4")
	mustContain(t, ctx, "#cam-BC4-A", "Body 4", "Provisioned", "Online", "alice", "v1")
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || title != "Cameras · camotp · Metro Police" {
		t.Fatalf("title %q (%v)", title, err)
	}
	shoot(t, ctx, "console-cameras")
	// Filter by state, then search by officer.
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#state"), "provisioned"),
		chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitNotPresent(chromedp.ID("cam-WF-C")),
	)
	mustContain(t, ctx, "#summary", "of 2")
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS("#state"), ""),
		chromedp.SendKeys(chromedp.ID("q"), "BOB"),
		chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitNotPresent(chromedp.ID("cam-BC4-A")),
	)
	mustContain(t, ctx, "#summary", "of 1")
	// Sort by serial, descending, two a page.
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras?sort=serial&dir=desc&size=25"), chromedp.WaitVisible(chromedp.ID("cameras")))
	if first := text(t, ctx, "#cameras tbody tr td"); first != "WF-C" {
		t.Fatalf("first row sorted by serial descending: %q", first)
	}

	// The camera's page and its history.
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC4-A"), chromedp.WaitVisible(chromedp.ID("facts")))
	mustContain(t, ctx, "#facts", "Provisioned", "alice", "version 1", "0 (on time)", "just now")
	mustContain(t, ctx, "#history", "camera.assign", "provision.proof")
	shoot(t, ctx, "console-camera")

	// Rotate: confirmation, result, the camera proves the new seed.
	run(t, ctx, chromedp.Click(`//a[text()="Rotate seed"]`), chromedp.WaitVisible(chromedp.ID("confirm")))
	mustContain(t, ctx, "#confirm-title", "Rotate the seed of camera BC4-A?")
	shoot(t, ctx, "console-confirm-rotate")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Seed rotation started: version 2 was sent to camera BC4-A")
	mustContain(t, ctx, "#history", "rotate.start", "fran")
	testenv.WaitCamera(t, f.Srv.Store, "BC4-A", model.StateProvisioned, 2)

	// Unassign bob's camera (a destructive action: red, confirmed).
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC3-B"), chromedp.WaitVisible(chromedp.ID("actions")),
		chromedp.Click(`//a[text()="Unassign"]`), chromedp.WaitVisible(chromedp.ID("confirm")))
	if class, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("confirm"), "class")); err != nil || class.Value != "danger" {
		t.Fatalf("unassign button class %q (%v), want danger", class.Value, err)
	}
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Camera BC3-B unassigned.")
	mustContain(t, ctx, "#officer", "not assigned")

	// Assign it to dave: find him in the picker.
	run(t, ctx, chromedp.Click(`//a[text()="Assign to an officer"]`), chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.WaitVisible(chromedp.ID("user-bob")), // bob has no camera now
		chromedp.SendKeys(chromedp.ID("q"), "dav"), chromedp.Click(chromedp.ID("find")), chromedp.WaitNotPresent(chromedp.ID("user-bob")),
		chromedp.WaitVisible(chromedp.ID("user-dave")))
	if n := count(t, ctx, "#user-alice"); n != 0 {
		t.Fatal("the picker lists alice, who has a camera")
	}
	shoot(t, ctx, "console-assign")
	run(t, ctx, chromedp.Click(chromedp.ID("user-dave")), chromedp.Click(chromedp.ID("assign")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Camera BC3-B assigned to dave.")
	if c, _ := f.Srv.Store.Camera(t.Context(), "BC3-B"); c.AssignedUser != "dave" {
		t.Fatalf("BC3-B assigned to %q", c.AssignedUser)
	}

	// Provision the new camera; wipe carol's.
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/NEW-1/provision"), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Provisioning started: version 1 was sent to camera NEW-1")
	testenv.WaitCamera(t, f.Srv.Store, "NEW-1", model.StateProvisioned, 1)
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/WF-C"), chromedp.WaitVisible(chromedp.ID("actions")),
		chromedp.Click(`//a[text()="Wipe"]`), chromedp.WaitVisible(chromedp.ID("confirm")))
	shoot(t, ctx, "console-confirm-wipe")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#state", "Wiping")

	// The audit rows say who did what, from where, as the API's do.
	log, err := f.Srv.Store.AuditLog(t.Context(), "BC3-B", 10)
	if err != nil || log[0].Action != "camera.assign" || log[0].Actor != "fran" || log[0].Detail != "user dave" || log[0].SourceIP != "127.0.0.1" ||
		log[1].Action != "camera.unassign" || log[1].Detail != "user bob" {
		t.Fatalf("BC3-B's audit rows: %+v %v", log[:2], err)
	}
}

// submit runs actions that end in a navigation (a form sent, a link
// followed) and waits until the page it leads to has loaded; it returns
// that page's status.
func submit(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

// count is the number of elements sel matches.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// TestBrowserConsoleBulkAssignment: a file with one bad row is previewed
// with that row marked and cannot be applied (nothing assigned); a good
// file is previewed row by row and applied whole; a file whose rows stop
// applying between the preview and the apply is refused whole.
func TestBrowserConsoleBulkAssignment(t *testing.T) {
	f := testenv.NewFleet(t)
	secret := addStaff(t, f, "fran", "fleet")
	for _, sn := range []string{"B-1", "B-2", "B-3"} {
		testenv.Camera(t, f.Srv, sn, device.Body3)
	}
	for _, u := range []string{"erin", "gus"} {
		testenv.User(t, f.Srv, u, "pw-"+u+"-long")
	}
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	assigned := func(sn string) string {
		c, err := f.Srv.Store.Camera(t.Context(), sn)
		if err != nil {
			t.Fatal(err)
		}
		return c.AssignedUser
	}
	base := "http://" + f.Srv.HTTPAddr()
	ctx := testenv.Chromium(t)
	browserSignIn(t, ctx, f, "fran", secret)
	upload := func(path string) {
		t.Helper()
		run(t, ctx, chromedp.Navigate(base+"/admin/assignments"), chromedp.WaitVisible(chromedp.ID("upload")),
			chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}), chromedp.Click(chromedp.ID("preview")),
			chromedp.WaitVisible(chromedp.ID("rows")))
	}
	shoot(t, ctx, "console-bulk")

	// One bad row: shown, and nothing can be applied.
	upload(file("bad.csv", "serial,username\nB-1,dave\nB-2,erin\nB-3,nobody\n"))
	mustContain(t, ctx, "#error", "1 of 3 rows cannot be applied", "Nothing will be assigned")
	mustContain(t, ctx, "#row-4", "B-3", "nobody", "Cannot apply", "no user nobody")
	mustContain(t, ctx, "#row-2", "To assign")
	if n := count(t, ctx, "#apply"); n != 0 {
		t.Fatal("a file with a bad row can be applied")
	}
	shoot(t, ctx, "console-bulk-bad-row")
	if assigned("B-1") != "" || assigned("B-2") != "" {
		t.Fatal("a preview assigned cameras")
	}

	// A good file: previewed, then applied whole.
	good := file("good.csv", "B-1, dave\r\nB-2,erin\r\nBC4-A,alice\r\n")
	upload(good)
	mustContain(t, ctx, "#notice", "2 to assign, 1 unchanged")
	mustContain(t, ctx, "#row-3", "BC4-A", "Unchanged")
	shoot(t, ctx, "console-bulk-preview")
	run(t, ctx, chromedp.Click(chromedp.ID("apply")), chromedp.WaitNotPresent(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.ID("counts")))
	mustContain(t, ctx, "#notice", "Done: 2 cameras assigned, 1 unchanged.")
	mustContain(t, ctx, "#row-1", "B-1", "dave", "Assigned")
	shoot(t, ctx, "console-bulk-applied")
	if assigned("B-1") != "dave" || assigned("B-2") != "erin" || assigned("BC4-A") != "alice" {
		t.Fatalf("after apply: B-1 %q, B-2 %q", assigned("B-1"), assigned("B-2"))
	}
	log, _ := f.Srv.Store.AuditLog(t.Context(), "B-1", 1)
	if len(log) != 1 || log[0].Action != "camera.assign" || log[0].Actor != "fran" || log[0].Detail != "user dave (bulk)" {
		t.Fatalf("B-1's audit row: %+v", log)
	}

	// The fleet changes between preview and apply: nothing is applied.
	testenv.Camera(t, f.Srv, "B-4", device.Body3)
	for _, u := range []string{"hal", "ivy"} {
		testenv.User(t, f.Srv, u, "pw-"+u+"-long")
	}
	upload(file("race.csv", "B-3,gus\nB-4,ivy\n"))
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("apply")))
	testenv.Assign(t, f.Srv, "B-4", "hal") // meanwhile, through the API
	run(t, ctx, chromedp.Click(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.ID("error")))
	mustContain(t, ctx, "#error", "Nothing was assigned")
	mustContain(t, ctx, "#row-2", "B-4", "Cannot apply", "assigned to hal")
	if assigned("B-3") != "" {
		t.Fatal("B-3 was assigned although its file could not be applied whole")
	}
}

// TestBrowserConsoleUsersPolicyAudit: a security officer sees a blocked
// officer on the users page and unblocks her, resets an officer's MFA,
// forgets another's devices (both red, confirmed), changes the policy,
// and reads the audit log by filter and page.
func TestBrowserConsoleUsersPolicyAudit(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) { c.OrgName = "Metro Police" })
	secret := addStaff(t, f, "sam", "security")
	wrong := f.WrongCode(t, "alice")
	tok := f.Pending(t, "alice")
	for range 3 {
		f.Verify(t, tok, wrong)
	}
	base := "http://" + f.Srv.HTTPAddr()
	ctx := testenv.Chromium(t)
	browserSignIn(t, ctx, f, "sam", secret)
	run(t, ctx, chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(chromedp.ID("users")))
	mustContain(t, ctx, "#user-alice", "alice", "Officer", "Body camera", "BC4-A", "Blocked for", "Unblock")
	mustContain(t, ctx, "#user-bob .blocked", "No")
	mustContain(t, ctx, "#user-sam .methods", "Authenticator app")
	if n := count(t, ctx, `header nav a[href="/admin/cameras"]`); n != 0 {
		t.Fatal("a security officer is offered the cameras")
	}
	shoot(t, ctx, "console-users")

	// Unblock alice.
	run(t, ctx, chromedp.Click(chromedp.ID("unblock-alice")), chromedp.WaitVisible(chromedp.ID("confirm")))
	mustContain(t, ctx, "#confirm-title", "Unblock alice?")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "alice is unblocked")
	mustContain(t, ctx, "#user-alice .blocked", "No")
	f.Clock.Add(30 * time.Second)
	if status, body := f.Verify(t, f.Pending(t, "alice"), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != 200 {
		t.Fatalf("alice after the unblock: %d %v", status, body)
	}

	// Reset MFA and forget devices: destructive, confirmed.
	run(t, ctx, chromedp.Navigate(base+"/admin/users"), chromedp.WaitVisible(chromedp.ID("reset-dave")))
	// Not on the security officer's own row: that is an administrator's.
	if n := count(t, ctx, "#reset-sam"); n != 0 || count(t, ctx, "#staff-sam") != 1 {
		t.Fatalf("the security officer's own row offers a reset (%d)", n)
	}
	if class, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("reset-dave"), "class")); err != nil || !strings.Contains(class.Value, "danger-outline") {
		t.Fatalf("Reset MFA is not styled as destructive: %q %v", class.Value, err)
	}
	run(t, ctx, chromedp.Click(chromedp.ID("forget-bob")), chromedp.WaitVisible(chromedp.ID("confirm")))
	mustContain(t, ctx, "#confirm-title", "Forget the devices of bob?")
	shoot(t, ctx, "console-confirm-forget")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Devices of bob forgotten")
	run(t, ctx, chromedp.Click(chromedp.ID("reset-bob")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "MFA of bob reset.")

	// The policy: MFA no longer required, then required again.
	run(t, ctx, chromedp.Navigate(base+"/admin/policy"), chromedp.WaitVisible(chromedp.ID("policy")))
	shoot(t, ctx, "console-policy")
	run(t, ctx, chromedp.Click(chromedp.ID("require")), chromedp.Click(chromedp.ID("save-policy")), chromedp.WaitVisible(chromedp.ID("notice")))
	if pol, _ := f.Srv.SignIn.Policy(t.Context()); pol.RequireMFA {
		t.Fatal("the policy still requires MFA")
	}
	submit(t, ctx, chromedp.Click(chromedp.ID("require")), chromedp.Click(chromedp.ID("save-policy")))
	if pol, _ := f.Srv.SignIn.Policy(t.Context()); !pol.RequireMFA {
		t.Fatal("the policy does not require MFA again")
	}

	// The audit log: filtered, then paged.
	run(t, ctx, chromedp.Navigate(base+"/admin/audit"), chromedp.WaitVisible(chromedp.ID("audit")),
		chromedp.SendKeys(chromedp.ID("actor"), "sam"), chromedp.SendKeys(chromedp.ID("action"), "user.*"))
	// The unfiltered page has rows too: wait for the filtered page itself.
	submit(t, ctx, chromedp.Click(chromedp.ID("apply-filters")))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#audit td[data-label="Action"]`)))
	rows := text(t, ctx, "#audit tbody")
	for _, want := range []string{"user.unblock", "user.forget-devices", "user.reset-mfa"} {
		if !strings.Contains(rows, want) {
			t.Fatalf("filtered audit rows lack %s:\n%s", want, rows)
		}
	}
	if strings.Contains(rows, "org.policy") || strings.Contains(rows, "login.") {
		t.Fatalf("the filter let other rows through:\n%s", rows)
	}
	if href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("export-csv"), "href")); err != nil ||
		!strings.Contains(href.Value, "format=csv") || !strings.Contains(href.Value, "actor=sam") || !strings.Contains(href.Value, "action=user.%2A") {
		t.Fatalf("CSV export link %q (%v)", href.Value, err)
	}
	shoot(t, ctx, "console-audit")
	run(t, ctx, chromedp.Navigate(base+"/admin/audit?size=25"), chromedp.WaitVisible(chromedp.ID("older")))
	first := text(t, ctx, "#audit tbody tr")
	run(t, ctx, chromedp.Click(chromedp.ID("older")), chromedp.WaitVisible(chromedp.ID("newer")))
	if text(t, ctx, "#audit tbody tr") == first {
		t.Fatal("the older page starts with the same row")
	}
	run(t, ctx, chromedp.Click(chromedp.ID("newer")), chromedp.WaitNotPresent(chromedp.ID("newer")))
	if got := text(t, ctx, "#audit tbody tr"); got != first {
		t.Fatalf("back to the newest page: %q, want %q", got, first)
	}

	// The hash chains: they hold, until a row is edited in the file.
	submit(t, ctx, chromedp.Click(chromedp.ID("verify")))
	mustContain(t, ctx, "#verdict", "Every chain holds")
	shoot(t, ctx, "console-audit-verify")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.Dir(), server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`UPDATE audit SET actor = 'nobody' WHERE action = 'user.unblock' RETURNING seq`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Navigate(base+"/admin/audit"), chromedp.WaitVisible(chromedp.ID("verify")))
	submit(t, ctx, chromedp.Click(chromedp.ID("verify")))
	mustContain(t, ctx, "#verdict", "changed in the database", fmt.Sprintf("row %d of chain 0", seq))
	shoot(t, ctx, "console-audit-broken")
}

// TestBrowserConsoleRoles: a fleet manager is not offered the users and
// gets the 403 page at them; a security officer gets it at a camera
// action; an officer gets it at /admin.
func TestBrowserConsoleRoles(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) { c.OrgName = "Metro Police" })
	base := "http://" + f.Srv.HTTPAddr()
	for _, c := range []struct {
		name, role, path, says string
	}{
		{"fran", "fleet", "/admin/users", "Your role (Fleet manager) does not include this page."},
		{"fran2", "fleet", "/admin/audit", "Your role (Fleet manager) does not include this page."},
		{"sam", "security", "/admin/cameras/BC4-A/wipe", "Your role (Security officer) does not include this page."},
		{"ollie", "officer", "/admin", "The administration pages are for administrators"},
	} {
		t.Run(c.role+c.path, func(t *testing.T) {
			secret := addStaff(t, f, c.name, c.role)
			ctx := testenv.Chromium(t)
			browserSignIn(t, ctx, f, c.name, secret)
			if c.role == "fleet" {
				run(t, ctx, chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.ID("staff")))
				if n := count(t, ctx, `header nav a[href="/admin/users"]`); n != 0 {
					t.Fatal("a fleet manager is offered the users")
				}
			}
			resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+c.path))
			if err != nil || resp.Status != 403 {
				t.Fatalf("%s: %v %v", c.path, resp, err)
			}
			mustContain(t, ctx, "#error", c.says)
			mustContain(t, ctx, "#forbidden", "You cannot open this page")
			if c.name == "fran" {
				shoot(t, ctx, "console-forbidden")
			}
		})
	}
}
