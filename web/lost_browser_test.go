package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// TestBrowserConsoleLostCamera: a security officer, who does not see
// cameras, reports alice's camera lost from alice's row of the user page,
// with a reason; a fleet manager finds it with the lost filter and its
// badge, sees the banner on its page (no Assign, no Found), reports bob's
// camera lost from its page and provisions alice's camera again once its
// wipe is proven; an administrator declares alice's camera found (bob's is
// refused: not provisioned again) and can assign it again.
func TestBrowserConsoleLostCamera(t *testing.T) {
	f := testenv.NewFleet(t, func(c *server.Config) { c.OrgName = "Metro Police" })
	sam := addStaff(t, f, "sam", "security")
	fran := addStaff(t, f, "fran", "fleet")
	ada := addStaff(t, f, "ada", "admin")
	base := "http://" + f.Srv.HTTPAddr()

	// Security: from the user page.
	ctx := testenv.Chromium(t)
	browserSignIn(t, ctx, f, "sam", sam)
	run(t, ctx, chromedp.Navigate(base+"/admin/users?q=alice"), chromedp.WaitVisible(chromedp.ID("lost-alice")),
		chromedp.Click(chromedp.ID("lost-alice")), chromedp.WaitVisible(chromedp.ID("confirm")))
	mustContain(t, ctx, "#confirm-title", "Report camera BC4-A lost or stolen?")
	mustContain(t, ctx, "ul", "Assigned to alice")
	if class, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("confirm"), "class")); err != nil || class.Value != "danger" {
		t.Fatalf("report button class %q (%v), want danger", class.Value, err)
	}
	run(t, ctx, chromedp.SendKeys(chromedp.ID("reason"), "left in the locker room, gone next morning"))
	shoot(t, ctx, "console-confirm-report-lost")
	if status := submit(t, ctx, chromedp.Click(chromedp.ID("confirm"))); status != 200 {
		t.Fatalf("report: %d", status)
	}
	mustContain(t, ctx, "#notice", "Camera BC4-A reported lost: its codes are refused from now on; alice is unassigned")
	c, _ := f.Srv.Store.Camera(t.Context(), "BC4-A")
	if c.Lost == nil || c.Lost.By != "sam" || c.Lost.Reason != "left in the locker room, gone next morning" || c.AssignedUser != "" {
		t.Fatalf("BC4-A after the report: %+v %+v", c, c.Lost)
	}
	if status := submit(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC4-A/found")); status != 403 {
		t.Fatalf("a security officer opens found: %d", status)
	}
	// Fleet: the list, the page, a report from the page, the provision.
	ctx = testenv.Chromium(t)
	browserSignIn(t, ctx, f, "fran", fran)
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras"), chromedp.WaitVisible(chromedp.ID("cameras")),
		chromedp.SetValue(chromedp.CSS("#lost"), "yes"), chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitNotPresent(chromedp.ID("cam-BC3-B")))
	mustContain(t, ctx, "#summary", "of 1")
	mustContain(t, ctx, "#cam-BC4-A", "Lost")
	shoot(t, ctx, "console-cameras-lost")
	testenv.WaitCamera(t, f.Srv.Store, "BC4-A", model.StateWiped, 2) // alice's camera is online: the wipe reached it
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC4-A"), chromedp.WaitVisible(chromedp.ID("lost-banner")))
	mustContain(t, ctx, "#lost-banner", "Reported lost or stolen", "by sam", "left in the locker room",
		"Provision it with a new seed before an administrator can declare it found.")
	mustContain(t, ctx, "#history", "camera.report-lost", "wipe.proof")
	if n := count(t, ctx, `#actions a[href$="assign"], #actions a[href$="/found"]`); n != 0 {
		t.Fatalf("a lost camera's page offers a fleet manager %d assign, unassign or found actions", n)
	}
	shoot(t, ctx, "console-camera-lost")
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC3-B"), chromedp.WaitVisible(chromedp.ID("actions")),
		chromedp.Click(`//a[text()="Report lost or stolen"]`), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Camera BC3-B reported lost", "bob is unassigned")
	mustContain(t, ctx, "#lost-banner", "by fran")
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC4-A/provision"), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	testenv.WaitCamera(t, f.Srv.Store, "BC4-A", model.StateProvisioned, 3)

	// Admin: found, and assign again.
	ctx = testenv.Chromium(t)
	browserSignIn(t, ctx, f, "ada", ada)
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC4-A"), chromedp.WaitVisible(chromedp.ID("lost-banner")))
	mustContain(t, ctx, "#lost-banner", "an administrator can now declare it found")
	run(t, ctx, chromedp.Click(`//a[text()="Found"]`), chromedp.WaitVisible(chromedp.ID("confirm")))
	mustContain(t, ctx, "#confirm-title", "Declare camera BC4-A found?")
	shoot(t, ctx, "console-confirm-found")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("notice")))
	mustContain(t, ctx, "#notice", "Camera BC4-A found: no longer reported lost (seed version 3)")
	if n := count(t, ctx, "#lost-banner"); n != 0 {
		t.Fatal("the banner stays after found")
	}
	run(t, ctx, chromedp.Click(`//a[text()="Assign to an officer"]`), chromedp.WaitVisible(chromedp.ID("user-alice")))
	// bob's camera was not provisioned again: found is refused, saying why.
	run(t, ctx, chromedp.Navigate(base+"/admin/cameras/BC3-B/found"), chromedp.WaitVisible(chromedp.ID("error")))
	mustContain(t, ctx, "#error", "Not yet: camera BC3-B is reported lost")
	if status := submit(t, ctx, chromedp.Click(chromedp.ID("confirm"))); status != 409 {
		t.Fatalf("found of BC3-B: %d, want 409", status)
	}
	mustContain(t, ctx, "#error", "Not done: camera BC3-B is reported lost")
	if c, _ := f.Srv.Store.Camera(t.Context(), "BC3-B"); c.Lost == nil {
		t.Fatal("BC3-B found without a fresh provision")
	}
}
