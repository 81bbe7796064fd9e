package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
)

// The console shows a camera's clock report: on its page the reported
// offset, and on both pages a badge while it is drifting (past the alert)
// or its reports disagree with its codes; cameras on time have none.
func TestConsoleClockBadges(t *testing.T) {
	f := testenv.NewFleet(t)
	b := signInApp(t, f, "boss", addStaff(t, f, "boss", "admin"))
	st := f.Srv.Store
	// BC3-B's signed report said it runs 40 s fast (the report pipeline
	// is tested in provisioning; a counter past any the camera sent).
	if _, ok, err := st.RecordClock(t.Context(), model.ClockReport{Serial: "BC3-B", Seq: 1 << 40, Offset: 40 * time.Second,
		RTT: 3 * time.Millisecond, At: f.Clock.Now()}, 20*time.Second); err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	row := func(page, serial string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<tr id="cam-` + serial + `">.*?</tr>`).FindString(page)
		if m == "" {
			t.Fatalf("no row of %s:\n%s", serial, page)
		}
		return m
	}
	status, page := b.get("/admin/cameras")
	if status != http.StatusOK || !strings.Contains(row(page, "BC3-B"), "Clock drifting") ||
		strings.Contains(row(page, "BC4-A"), "Clock drifting") || strings.Contains(page, "Clock mismatch") {
		t.Fatalf("listing: %d\n%s", status, page)
	}
	status, page = b.get("/admin/cameras/BC3-B")
	report := regexp.MustCompile(`(?s)<dd id="clock-report">.*?</dd>`).FindString(page)
	if status != http.StatusOK || !strings.Contains(report, "&#43;40.0 s") || !strings.Contains(report, "Clock drifting") {
		t.Fatalf("camera page: %d %q", status, report)
	}
	if _, err := st.SetClockMismatch(t.Context(), "BC3-B", true, f.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, page = b.get("/admin/cameras"); !strings.Contains(row(page, "BC3-B"), "Clock mismatch") {
		t.Fatalf("listing after the mismatch:\n%s", row(page, "BC3-B"))
	}
	if _, page = b.get("/admin/cameras/WF-C"); !strings.Contains(page, `<dd id="clock-report"><span class="muted">none received</span></dd>`) {
		t.Fatalf("a camera that never reported:\n%s", page)
	}
}
