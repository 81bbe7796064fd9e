package web_test

import (
	"github.com/camotp/camotp/internal/testclock"

	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// codeRE finds a 6-digit code in a message sent.
var codeRE = regexp.MustCompile(`\b[0-9]{6}\b`)

// TestWebEmailCodeAndOutbox: the page's Send code button, with the
// development outbox as the sender, and /dev/outbox showing the message.
func TestWebEmailCodeAndOutbox(t *testing.T) {
	clk := &testclock.Shift{}
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) { c.Now = clk.Now; c.Notify.DevOutbox = true })
	f := &testenv.Fleet{Srv: srv, Clock: clk}
	testenv.User(t, srv, "dave", "pw-dave-long")
	f.SetPolicy(t, true, "bodycam", "email")
	b := newBrowser(t, f)
	_, page := b.get("/login")
	_, page, _ = b.post("/login", url.Values{"username": {"dave"}, "password": {"pw-dave-long"}}, page)
	// The address masked only, and how long a code lasts.
	if !strings.Contains(page, `id="send"`) || !strings.Contains(page, `We email a code to <span id="to">d•••@pd.example</span>; it lasts 60 seconds.`) ||
		strings.Contains(page, "dave@pd.example") {
		t.Fatalf("email challenge:\n%s", page)
	}
	status, page, _ := b.post("/mfa/send", url.Values{"method": {"email"}}, page)
	if status != 200 || !strings.Contains(page, "Code sent to d•••@pd.example. It lasts 60 seconds.") || !strings.Contains(page, "Resend code") ||
		strings.Contains(page, "dave@pd.example") {
		t.Fatalf("send: %d\n%s", status, page)
	}
	msgs, _ := srv.Store.Outbox(context.Background(), 10)
	if len(msgs) != 1 || msgs[0].Address != "dave@pd.example" {
		t.Fatalf("outbox: %+v", msgs)
	}
	_, outbox := b.get("/dev/outbox")
	if !strings.Contains(outbox, msgs[0].Body) {
		t.Fatalf("/dev/outbox lacks the message:\n%s", outbox)
	}
	status, page, resp := b.post("/mfa", url.Values{"method": {"email"}, "code": {codeRE.FindString(msgs[0].Body)}}, page)
	if status != 200 || resp.Request.URL.Path != "/home" {
		t.Fatalf("email code on the page: %d\n%s", status, page)
	}
}
