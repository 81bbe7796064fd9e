package web_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/provisioning/pskc"
)

// TestConsoleImportedCamera: a camera imported from a PSKC file without
// an identity key shows so on its console page, offers no MQTT operation
// (provision, rotate, wipe), and a rotation posted anyway is refused
// saying why; its import is in its history.
func TestConsoleImportedCamera(t *testing.T) {
	f := testenv.NewFleet(t)
	t0, step := int64(0), int64(30)
	doc, err := pskc.Marshal([]pskc.Key{{SerialNo: "TOK-1", Model: "workforce", Algorithm: pskc.AlgorithmTOTP, Digits: 6,
		Secret: bytes.Repeat([]byte{5}, 20), Time: &t0, TimeInterval: &step}}, pskc.WriteOptions{Password: "console", Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := f.Post(t, provisioning.PSKCImportPath, provisioning.PSKCImportRequest{PSKC: doc, Password: "console"}); status != http.StatusCreated {
		t.Fatalf("import: %d %v", status, body)
	}
	b := signInApp(t, f, "fran", addStaff(t, f, "fran", "fleet"))
	status, page := b.get("/admin/cameras/TOK-1")
	if status != http.StatusOK || !strings.Contains(page, `<dd id="identity"><span class="badge pend">none</span>`) ||
		!strings.Contains(page, "camera.import") {
		t.Fatalf("imported camera page: %d\n%s", status, page)
	}
	for _, op := range []string{"provision", "rotate", "wipe"} {
		if strings.Contains(page, `href="/admin/cameras/TOK-1/`+op+`"`) {
			t.Errorf("the page offers %s", op)
		}
	}
	if _, other := b.get("/admin/cameras/BC4-A"); !strings.Contains(other, `<dd id="identity">registered</dd>`) || !strings.Contains(other, `href="/admin/cameras/BC4-A/rotate"`) {
		t.Errorf("a registered camera's page:\n%s", other)
	}
	_, confirm := b.get("/admin/cameras/TOK-1/rotate")
	status, page, _ = b.post("/admin/cameras/TOK-1/rotate", url.Values{}, confirm)
	if status != http.StatusConflict || !strings.Contains(page, "no MQTT identity key") {
		t.Fatalf("rotate posted: %d\n%s", status, page)
	}
}
