package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape returns every sample of /metrics keyed by "name{k=v,...}" with the
// labels in the order the exposition format sorts them.
func scrape(t *testing.T, srv *server.Server, token string) map[string]float64 {
	t.Helper()
	code, body := get(t, "http://"+srv.HTTPAddr()+"/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			}
		}
	}
	return out
}

func TestHealthAndReadiness(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	base := "http://" + srv.HTTPAddr()
	for _, tc := range []struct {
		path string
		want string
	}{{"/healthz", "ok\n"}, {"/readyz", "ready\n"}} {
		if code, body := get(t, base+tc.path, ""); code != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.path, code, body, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	const token = "metrics-secret"
	vc := signin.DefaultConfig()
	vc.Limits.MaxFailures = 3
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.MetricsToken = token
		c.SignIn = &vc
	})
	url := "http://" + srv.HTTPAddr() + "/metrics"
	for _, tok := range []string{"", "wrong"} {
		if code, _ := get(t, url, tok); code != http.StatusUnauthorized {
			t.Errorf("/metrics with token %q: %d, want 401", tok, code)
		}
	}

	testenv.User(t, srv, "alice", "pw-alice-long")
	testenv.User(t, srv, "bob", "pw-bob-long")
	alice := testenv.ProvisionedCamera(t, srv, "BC4-A", device.Body4, "alice")
	testenv.ProvisionedCamera(t, srv, "BC3-B", device.Body3, "bob")
	testenv.Camera(t, srv, "WF-C", device.Workforce)

	login := func(user, pw string) string {
		code, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": pw})
		if code != 200 {
			return ""
		}
		return body["token"].(string)
	}
	verify := func(tok, code string) int {
		status, _ := testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": tok, "code": code})
		return status
	}
	if login("alice", "wrong-password") != "" {
		t.Fatal("wrong password accepted")
	}
	if got := verify(login("alice", "pw-alice-long"), testenv.ScreenCode(t, alice, time.Now())); got != 200 {
		t.Fatalf("verify alice: %d", got)
	}
	bob := login("bob", "pw-bob-long")
	for range 3 { // the third failure blocks bob from this IP
		verify(bob, "000000")
	}
	verify(bob, "000000") // refused while blocked

	got := scrape(t, srv, token)
	want := map[string]float64{
		`camotp_signin_attempts_total{method=password,result=failed,step=password}`: 1,
		`camotp_signin_attempts_total{method=password,result=ok,step=password}`:     2,
		`camotp_signin_attempts_total{method=bodycam,result=ok,step=mfa}`:           1,
		`camotp_signin_attempts_total{method=bodycam,result=invalid,step=mfa}`:      3,
		`camotp_signin_attempts_total{method=bodycam,result=blocked,step=mfa}`:      1,
		`camotp_verifications_total{method=bodycam,result=ok}`:                      1,
		`camotp_verifications_total{method=bodycam,result=invalid}`:                 3,
		`camotp_lockouts_total{step=otp}`:                                           1,
		`camotp_cameras{state=provisioned}`:                                         2,
		`camotp_cameras{state=registered}`:                                          1,
		`camotp_cameras_online{}`:                                                   2,
		`camotp_mqtt_clients_connected{}`:                                           3, // server + 2 cameras
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"camotp_mqtt_received_messages_total{}", "camotp_mqtt_sent_messages_total{}", "camotp_mqtt_received_bytes_total{}"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
	if t.Failed() {
		for k, v := range got {
			if strings.HasPrefix(k, "camotp_") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}
