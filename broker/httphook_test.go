package broker

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

const hookToken = "hook-token-0123456789"

type hookFixture struct {
	url        string
	handler    http.Handler
	now        time.Time
	x, y       camkey.PrivateKey
	serverBox  [32]byte
	xPW, yPW   string // derived passwords
	serverPass string
}

// newHookFixture serves the hook over real HTTP for cameras CAM-X and CAM-Y.
func newHookFixture(t testing.TB) *hookFixture {
	t.Helper()
	f := &hookFixture{now: time.Unix(1_800_000_000, 0), serverPass: "s3cret"}
	var err error
	if f.x, err = camkey.Generate(); err != nil {
		t.Fatal(err)
	}
	if f.y, err = camkey.Generate(); err != nil {
		t.Fatal(err)
	}
	box, _ := camkey.Generate()
	f.serverBox = box.Box
	if f.xPW, err = f.x.BrokerPassword("CAM-X", camkey.BoxPublic(f.serverBox)); err != nil {
		t.Fatal(err)
	}
	if f.yPW, err = f.y.BrokerPassword("CAM-Y", camkey.BoxPublic(f.serverBox)); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth := NewAuth(keys{"CAM-X": f.x.Public(), "CAM-Y": f.y.Public()}, "camotp-server", "camotp-server",
		[]byte(f.serverPass), func() time.Time { return f.now }, log)
	auth.AcceptDerivedPasswords(f.serverBox)
	mux := http.NewServeMux()
	NewHTTPHook(auth, hookToken, log).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url, f.handler = srv.URL, mux
	return f
}

// flipLast returns pw with its last character changed.
func flipLast(pw string) string {
	last := byte('A')
	if pw[len(pw)-1] == 'A' {
		last = 'B'
	}
	return pw[:len(pw)-1] + string(last)
}

// post sends body (a value sent as JSON, or a raw string) to path with the
// bearer token and returns the status and the result field.
func (f *hookFixture) post(t *testing.T, path, token string, body any) (int, HookResponse) {
	t.Helper()
	var raw string
	if s, ok := body.(string); ok {
		raw = s
	} else {
		data, _ := json.Marshal(body)
		raw = string(data)
	}
	req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, HookResponse{}
	}
	defer resp.Body.Close()
	var out HookResponse
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content-type %q; EMQX wants application/json", ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Errorf("answer is not JSON: %v", err)
		}
	}
	return resp.StatusCode, out
}

func TestHTTPHookAuthenticate(t *testing.T) {
	f := newHookFixture(t)
	bearer := "Bearer " + hookToken
	tests := []struct {
		name       string
		token      string
		body       any
		wantStatus int
		want       string
	}{
		{"server", bearer, HookAuthRequest{"camotp-server", "s3cret", "camotp-server"}, 200, HookAllow},
		{"server wrong secret", bearer, HookAuthRequest{"camotp-server", "s3cret!", "camotp-server"}, 200, HookDeny},
		{"server other client id", bearer, HookAuthRequest{"camotp-server", "s3cret", "x"}, 200, HookDeny},
		{"camera token", bearer, HookAuthRequest{"CAM-X", f.x.Token("CAM-X", f.now), "CAM-X"}, 200, HookAllow},
		{"camera token expired", bearer, HookAuthRequest{"CAM-X", f.x.Token("CAM-X", f.now.Add(-6*time.Minute)), "CAM-X"}, 200, HookDeny},
		{"camera derived password", bearer, HookAuthRequest{"CAM-X", f.xPW, "CAM-X"}, 200, HookAllow},
		{"X's password as Y", bearer, HookAuthRequest{"CAM-Y", f.xPW, "CAM-Y"}, 200, HookDeny},
		{"X's token as Y", bearer, HookAuthRequest{"CAM-Y", f.x.Token("CAM-Y", f.now), "CAM-Y"}, 200, HookDeny},
		{"wrong derived password", bearer, HookAuthRequest{"CAM-X", flipLast(f.xPW), "CAM-X"}, 200, HookDeny},
		{"client id differs", bearer, HookAuthRequest{"CAM-X", f.xPW, "CAM-Y"}, 200, HookDeny},
		{"unknown camera", bearer, HookAuthRequest{"CAM-Z", f.xPW, "CAM-Z"}, 200, HookDeny},
		{"anonymous", bearer, HookAuthRequest{"", "", "probe"}, 200, HookDeny},
		{"extra template fields are fine", bearer, `{"username":"CAM-Y","password":"` + f.yPW + `","clientid":"CAM-Y","peerhost":"10.0.0.9","proto_name":"MQTT"}`, 200, HookAllow},
		{"malformed JSON", bearer, `{"username":"CAM-Y",`, 200, HookDeny},
		{"trailing data", bearer, `{"username":"CAM-Y","password":"` + f.yPW + `","clientid":"CAM-Y"} {}`, 200, HookDeny},
		{"oversized body", bearer, `{"username":"CAM-Y","password":"` + f.yPW + `","clientid":"CAM-Y","pad":"` + strings.Repeat("a", MaxHookBody) + `"}`, 200, HookDeny},
		{"no bearer", "", HookAuthRequest{"CAM-X", f.xPW, "CAM-X"}, 401, ""},
		{"wrong bearer", "Bearer " + hookToken + "x", HookAuthRequest{"CAM-X", f.xPW, "CAM-X"}, 401, ""},
		{"bearer without scheme", hookToken, HookAuthRequest{"CAM-X", f.xPW, "CAM-X"}, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := f.post(t, HookAuthPath, tc.token, tc.body)
			if status != tc.wantStatus || out.Result != tc.want {
				t.Fatalf("status %d result %q; want %d %q", status, out.Result, tc.wantStatus, tc.want)
			}
			if status == 200 && (out.IsSuperuser == nil || *out.IsSuperuser) {
				t.Fatalf("is_superuser = %v; want an explicit false", out.IsSuperuser)
			}
		})
	}
	// Only POST.
	resp, err := http.Get(f.url + HookAuthPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestHTTPHookAuthorize(t *testing.T) {
	f := newHookFixture(t)
	bearer := "Bearer " + hookToken
	acl := func(user, client, topic, action string) HookACLRequest {
		return HookACLRequest{Username: user, ClientID: client, Topic: topic, Action: action}
	}
	tests := []struct {
		name       string
		token      string
		body       any
		wantStatus int
		want       string
	}{
		{"X reads its commands", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/prov", "subscribe"), 200, HookAllow},
		{"X writes its ack", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/ack", "publish"), 200, HookAllow},
		{"X writes its status", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/status", "publish"), 200, HookAllow},
		{"X reads Y's commands", bearer, acl("CAM-X", "CAM-X", "cams/CAM-Y/prov", "subscribe"), 200, HookDeny},
		{"X writes Y's ack", bearer, acl("CAM-X", "CAM-X", "cams/CAM-Y/ack", "publish"), 200, HookDeny},
		{"X writes its own commands", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/prov", "publish"), 200, HookDeny},
		{"X reads its own acks", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/ack", "subscribe"), 200, HookDeny},
		{"X subscribes with +", bearer, acl("CAM-X", "CAM-X", "cams/+/prov", "subscribe"), 200, HookDeny},
		{"X subscribes with #", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/#", "subscribe"), 200, HookDeny},
		{"X shared subscription", bearer, acl("CAM-X", "CAM-X", "$share/g/cams/CAM-X/prov", "subscribe"), 200, HookDeny},
		{"server publishes a command", bearer, acl("camotp-server", "camotp-server", "cams/CAM-Y/prov", "publish"), 200, HookAllow},
		{"server reads every ack", bearer, acl("camotp-server", "camotp-server", "cams/+/ack", "subscribe"), 200, HookAllow},
		{"server name, other client id", bearer, acl("camotp-server", "x", "cams/CAM-Y/prov", "publish"), 200, HookDeny},
		{"unknown action", bearer, acl("CAM-X", "CAM-X", "cams/CAM-X/prov", "all"), 200, HookDeny},
		{"malformed JSON", bearer, `[]`, 200, HookDeny},
		{"oversized body", bearer, `{"username":"CAM-X","clientid":"CAM-X","topic":"cams/CAM-X/prov","action":"subscribe","pad":"` + strings.Repeat("a", MaxHookBody) + `"}`, 200, HookDeny},
		{"wrong bearer", "Bearer nope", acl("CAM-X", "CAM-X", "cams/CAM-X/prov", "subscribe"), 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := f.post(t, HookACLPath, tc.token, tc.body)
			if status != tc.wantStatus || out.Result != tc.want {
				t.Fatalf("status %d result %q; want %d %q", status, out.Result, tc.wantStatus, tc.want)
			}
		})
	}
}

// Many broker nodes call at once: every answer is the right one.
func TestHTTPHookParallel(t *testing.T) {
	f := newHookFixture(t)
	bearer := "Bearer " + hookToken
	type call struct {
		path string
		body any
		want string
	}
	calls := []call{
		{HookAuthPath, HookAuthRequest{"CAM-X", f.xPW, "CAM-X"}, HookAllow},
		{HookAuthPath, HookAuthRequest{"CAM-Y", f.xPW, "CAM-Y"}, HookDeny},
		{HookAuthPath, HookAuthRequest{"CAM-Y", f.y.Token("CAM-Y", f.now), "CAM-Y"}, HookAllow},
		{HookACLPath, HookACLRequest{"CAM-Y", "CAM-Y", "cams/CAM-Y/prov", "subscribe"}, HookAllow},
		{HookACLPath, HookACLRequest{"CAM-Y", "CAM-Y", "cams/CAM-X/prov", "subscribe"}, HookDeny},
	}
	var wg sync.WaitGroup
	for i := range 200 {
		c := calls[i%len(calls)]
		wg.Go(func() {
			status, out := f.post(t, c.path, bearer, c.body)
			if status != 200 || out.Result != c.want {
				t.Errorf("call %d (%s %v): %d %q; want %q", i, c.path, c.body, status, out.Result, c.want)
			}
		})
	}
	wg.Wait()
}

// The embedded broker's hook does not take derived passwords unless told to.
func TestAuthDerivedPasswordsOnlyWhenAccepted(t *testing.T) {
	f := newHookFixture(t)
	auth := NewAuth(keys{"CAM-X": f.x.Public()}, "srv", "srv", []byte("x"), func() time.Time { return f.now },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := auth.Authenticate(t.Context(), Login{Username: "CAM-X", ClientID: "CAM-X", Password: []byte(f.xPW)}); err == nil {
		t.Fatal("derived password accepted by an Auth that was not told to accept them")
	}
	auth.AcceptDerivedPasswords(f.serverBox)
	if err := auth.Authenticate(t.Context(), Login{Username: "CAM-X", ClientID: "CAM-X", Password: []byte(f.xPW)}); err != nil {
		t.Fatal(err)
	}
	if err := auth.Authenticate(t.Context(), Login{Username: "CAM-X", ClientID: "CAM-X", Password: []byte(f.xPW),
		Will: true, WillTopic: "cams/CAM-Y/status"}); err == nil {
		t.Fatal("will on another camera's topic accepted")
	}
}
