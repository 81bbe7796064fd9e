package api_test

import (
	"github.com/camotp/camotp/internal/testclock"

	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/camotp/camotp/internal/notify"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// mailSink is a real SMTP server on loopback (emersion/go-smtp) with
// STARTTLS, keeping what it receives.
type mailSink struct {
	mu   sync.Mutex
	msgs []sunkMail
}

type sunkMail struct{ from, to, data string }

type sinkSession struct {
	sink     *mailSink
	from, to string
}

func (s *mailSink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &sinkSession{sink: s}, nil
}
func (s *sinkSession) Reset()                                        {}
func (s *sinkSession) Logout() error                                 { return nil }
func (s *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error { s.from = from; return nil }
func (s *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error   { s.to = to; return nil }
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, sunkMail{s.from, s.to, string(b)})
	s.sink.mu.Unlock()
	return err
}

func (s *mailSink) last(t *testing.T) sunkMail {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		t.Fatal("no mail received")
	}
	return s.msgs[len(s.msgs)-1]
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func startMailSink(t *testing.T) (*mailSink, int, *x509.CertPool) {
	t.Helper()
	sink := &mailSink{}
	cert, pool := selfSigned(t)
	srv := gosmtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sink, ln.Addr().(*net.TCPAddr).Port, pool
}

// hookSink is a real HTTP server standing in for an SMS/voice gateway.
type hookSink struct {
	mu     sync.Mutex
	got    []notify.Message
	auth   []string
	status int
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.Message
	json.NewDecoder(r.Body).Decode(&m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, m)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
}

func (h *hookSink) last(t *testing.T) notify.Message {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) == 0 {
		t.Fatal("gateway got nothing")
	}
	return h.got[len(h.got)-1]
}

var codeRE = regexp.MustCompile(`\b[0-9]{6}\b`)

// channelFleet is a fleet whose server sends email to a real SMTP sink
// (STARTTLS) and texts/calls to a real webhook server.
func channelFleet(t *testing.T) (*testenv.Fleet, *mailSink, *hookSink) {
	t.Helper()
	sink, port, pool := startMailSink(t)
	hooks := &hookSink{}
	hs := httptest.NewServer(hooks)
	t.Cleanup(hs.Close)
	clk := &testclock.Shift{}
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) {
		c.Now = clk.Now
		c.Notify.SMTP = &notify.SMTP{Host: "127.0.0.1", Port: port, From: "camotp@pd.example", Security: "starttls",
			TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
		c.Notify.SMSWebhook = &notify.Webhook{URL: hs.URL + "/sms", Token: "gw-token"}
		c.Notify.CallWebhook = &notify.Webhook{URL: hs.URL + "/call", Token: "gw-token"}
	})
	f := &testenv.Fleet{Srv: srv, Clock: clk}
	testenv.User(t, srv, "dave", "pw-dave-long")
	f.SetPolicy(t, true, signin.OrgMethods...)
	return f, sink, hooks
}

// TestEmailCodes: in an organisation without body cameras a user signs in
// by email first, with no forced set-up; codes arrive through real SMTP,
// live 60 s, work once, and a resend kills the earlier one.
func TestEmailCodes(t *testing.T) {
	f, mail, _ := channelFleet(t)
	f.SetPolicy(t, true, "app", "sms", "call", "email")
	_, body := f.Login(t, "dave", "pw-dave-long")
	if body["authenticator"] != "email" || body["setupMethods"] != nil {
		t.Fatalf("email first, no forced set-up: %v", body)
	}
	// Real senders: no development outbox is served.
	if resp, err := http.Get("http://" + f.Srv.HTTPAddr() + "/dev/outbox"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("/dev/outbox without --dev-outbox: %v %v", resp.StatusCode, err)
	}
	tok := body["token"].(string)
	status, sent := f.Send(t, tok, "email")
	if status != 200 || sent["sentTo"] != "d•••@pd.example" || sent["expiresIn"] != 60.0 {
		t.Fatalf("send: %d %v", status, sent)
	}
	m := mail.last(t)
	if m.to != "dave@pd.example" || m.from != "camotp@pd.example" || !strings.Contains(m.data, "Subject: Your sign-in code") {
		t.Fatalf("mail: %+v", m)
	}
	first := codeRE.FindString(m.data)
	f.Send(t, tok, "email") // resend: the first code dies
	second := codeRE.FindString(mail.last(t).data)
	if first == second {
		t.Skip("two random codes collided")
	}
	if status, _ := f.Verify(t, tok, first); status != 401 {
		t.Fatalf("code replaced by a resend still works: %d", status)
	}
	if status, body := f.Verify(t, tok, second); status != 200 || body["sessionToken"] == nil {
		t.Fatalf("email code: %d %v", status, body)
	}
	// Used once: a new sign-in cannot reuse it.
	_, body = f.Login(t, "dave", "pw-dave-long")
	tok = body["token"].(string)
	if status, _ := f.Verify(t, tok, second); status != 401 {
		t.Fatalf("email code reused: %d", status)
	}
	// Expiry: 60 s.
	f.Send(t, tok, "email")
	late := codeRE.FindString(mail.last(t).data)
	f.Clock.Add(61 * time.Second)
	if status, _ := f.Verify(t, tok, late); status != 401 {
		t.Fatalf("expired code accepted: %d", status)
	}
}

// TestPhoneCodes: a phone confirmed by a texted code sets up text and call
// together; codes go through the webhook with its token; a gateway failure
// is a clear 502; a flood of sends is throttled.
func TestPhoneCodes(t *testing.T) {
	f, _, hooks := channelFleet(t)
	svc := f.Srv.SignIn
	ctx := context.Background()
	if err := svc.StartPhone(ctx, "dave", "555 1234", "127.0.0.1"); err == nil {
		t.Fatal("phone without country code accepted")
	}
	if err := svc.StartPhone(ctx, "dave", "+1 (555) 123-4567", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	m := hooks.last(t)
	if m.Channel != "sms" || m.To != "+15551234567" || hooks.auth[0] != "Bearer gw-token" {
		t.Fatalf("webhook got %+v auth %q", m, hooks.auth[0])
	}
	if err := svc.ConfirmPhone(ctx, "dave", codeRE.FindString(m.Text), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	um, err := svc.Methods(ctx, "dave")
	if err != nil || strings.Join(um.Available, ",") != "sms,call,email" {
		t.Fatalf("after phone set-up: %v %v", um.Available, err)
	}
	// Email cannot be removed; the phone can.
	if err := svc.RemoveMethod(ctx, "dave", "email", ""); err == nil {
		t.Fatal("email removed")
	}
	_, body := f.Login(t, "dave", "pw-dave-long")
	tok := body["token"].(string)
	if status, _ := f.Send(t, tok, "call"); status != 200 {
		t.Fatalf("call: %d", status)
	}
	call := hooks.last(t)
	// The voice says the digits one by one, twice.
	spoken := strings.ReplaceAll(strings.SplitN(call.Text, ":", 2)[1], " ", "")
	if call.Channel != "call" || call.To != "+15551234567" || len(codeRE.FindAllString(spoken, -1)) != 2 {
		t.Fatalf("call text %q", call.Text)
	}
	status, out := f.Post(t, "/api/v1/auth/verify", map[string]string{"token": tok, "method": "call", "code": codeRE.FindString(spoken)})
	if status != 200 {
		t.Fatalf("call code: %d %v", status, out)
	}
	// The gateway fails: the user is told, nothing crashes.
	hooks.mu.Lock()
	hooks.status = 500
	hooks.mu.Unlock()
	_, body = f.Login(t, "dave", "pw-dave-long")
	tok = body["token"].(string)
	if status, out := f.Send(t, tok, "sms"); status != 502 || !strings.Contains(out["error"].(string), "could not be sent") {
		t.Fatalf("gateway down: %d %v", status, out)
	}
	// Flooding: after 3 sends without a successful code, sending is blocked.
	for range 2 {
		f.Send(t, tok, "sms")
	}
	if status, _ := f.Send(t, tok, "sms"); status != 429 {
		t.Fatalf("send flood not throttled: %d", status)
	}
}

// TestCameraOrgEmailThenSetup: product §1.3 — the organisation uses body
// cameras and dave has none: he proves himself by email, then must set up
// a method (app or phone) before the sign-in finishes.
func TestCameraOrgEmailThenSetup(t *testing.T) {
	f, mail, _ := channelFleet(t) // every method enabled
	_, body := f.Login(t, "dave", "pw-dave-long")
	if body["authenticator"] != "email" {
		t.Fatalf("login: %v", body)
	}
	tok := body["token"].(string)
	f.Send(t, tok, "email")
	status, out := f.Verify(t, tok, codeRE.FindString(mail.last(t).data))
	if status != 200 || out["authenticator"] != "setup" || out["sessionToken"] != nil || fmt.Sprint(out["setupMethods"]) != "[app phone]" {
		t.Fatalf("after email: %d %v", status, out)
	}
	setupTok := out["token"].(string)
	if status, _ := f.Verify(t, tok, "123456"); status != 401 {
		t.Fatalf("the email-step token still works: %d", status)
	}
	_, setup := f.Post(t, "/api/v1/auth/setup/app", map[string]string{"token": setupTok})
	status, done := f.Post(t, "/api/v1/auth/setup/confirm", map[string]string{"token": setupTok, "code": testenv.AppCode(t, setup["secret"].(string), f.Clock.Now())})
	if status != 200 || done["sessionToken"] == nil {
		t.Fatalf("set-up: %d %v", status, done)
	}
}
