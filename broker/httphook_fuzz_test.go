package broker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHTTPHook: whatever body EMQX (or anybody holding the hook token)
// sends, the hook never panics, and it allows a login only with a real
// credential and a topic only within the asking camera's own ones.
func FuzzHTTPHook(f *testing.F) {
	fx := newHookFixture(f)
	f.Add(true, `{"username":"CAM-X","clientid":"CAM-X","password":"`+fx.xPW+`"}`)
	f.Add(true, `{"username":"camotp-server","clientid":"camotp-server-a","password":"s3cret"}`)
	f.Add(true, `{"username":"CAM-X","clientid":"CAM-Y","password":"k1.AAAA"}`)
	f.Add(false, `{"username":"CAM-X","clientid":"CAM-X","topic":"cams/CAM-X/ack","action":"publish"}`)
	f.Add(false, `{"username":"CAM-X","clientid":"CAM-X","topic":"cams/CAM-Y/prov","action":"subscribe"}`)
	f.Add(false, `{"username":"CAM-X","clientid":"CAM-X","topic":"cams/+/prov","action":"subscribe"}`)
	f.Add(false, `{"username":"CAM-X","topic":"cams/CAM-X/#","action":"subscribe"}`)
	f.Fuzz(func(t *testing.T, login bool, body string) {
		path := "/api/v1/mqtt/acl"
		if login {
			path = "/api/v1/mqtt/auth"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+hookToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		var resp HookResponse
		if json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.Result != "allow" {
			return
		}
		var in struct{ Username, ClientID, Password, Topic, Action string }
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("allowed a body that is not JSON: %q", body)
		}
		if login {
			if in.Password != fx.xPW && in.Password != fx.yPW && in.Password != fx.serverPass {
				t.Fatalf("login allowed without a real credential: %q", body)
			}
			return
		}
		if in.Username == "camotp-server" {
			return // the server reads and writes every camera's topics
		}
		if !strings.HasPrefix(in.Topic, "cams/"+in.Username+"/") || strings.ContainsAny(in.Topic, "+#") {
			t.Fatalf("%s allowed on %q: %q", in.Username, in.Topic, body)
		}
	})
}
