package dynsec_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camotp/camotp/broker/dynsec"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/testenv"
)

const serverSecret = "server-secret-0123456789"

var serverLogin = dynsec.ServerLogin{Username: "camotp-server", ClientID: "camotp-server", Password: serverSecret}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixture is a mosquitto with dynamic security and camotp as its admin.
type fixture struct {
	m         *testenv.Mosquitto
	c         *dynsec.Client
	acc       *dynsec.Accounts
	serverBox [32]byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	m := testenv.StartMosquitto(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := dynsec.Dial(ctx, dynsec.Config{Broker: m.URL, Username: m.AdminUser, Password: m.AdminPassword, Log: testenv.Log(t)})
	if err != nil {
		t.Fatalf("%v\n%s", err, m.Log())
	}
	t.Cleanup(c.Close)
	k, _ := camkey.Generate()
	return &fixture{m: m, c: c, serverBox: k.Box, acc: dynsec.NewAccounts(c, k.Box, serverLogin, testenv.Log(t))}
}

// camera is a registered camera's keys and its derived broker password.
type camera struct {
	serial string
	key    camkey.PrivateKey
	pw     string
}

func (f *fixture) camera(t *testing.T, serial string) camera {
	t.Helper()
	k, err := camkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pw, err := k.BrokerPassword(serial, camkey.BoxPublic(f.serverBox))
	if err != nil {
		t.Fatal(err)
	}
	return camera{serial: serial, key: k, pw: pw}
}

func (c camera) reg() dynsec.Camera { return dynsec.Camera{Serial: c.serial, Key: c.key.Public()} }

// connect logs in with paho (MQTT 3.1.1) and returns the client.
func connect(t *testing.T, url, user, clientID, password string, onMsg paho.MessageHandler) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).SetDefaultPublishHandler(onMsg)
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl, nil
}

// inbox collects messages a client received.
type inbox struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
	got  chan struct{}
}

func newInbox() *inbox { return &inbox{got: make(chan struct{}, 1000)} }

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m.Topic()+" "+string(m.Payload()))
	b.mu.Unlock()
	b.got <- struct{}{}
}

// waitFor waits (bounded) until a message equal to want arrived and
// returns every message so far.
func (b *inbox) waitFor(t *testing.T, want string) []string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		b.mu.Lock()
		msgs := append([]string(nil), b.msgs...)
		b.mu.Unlock()
		for _, m := range msgs {
			if m == want {
				return msgs
			}
		}
		select {
		case <-b.got:
		case <-timeout:
			t.Fatalf("no %q within 15 s; got %q", want, msgs)
		}
	}
}

// flipLast returns pw with its last character changed (base64url keeps it
// a plausible password).
func flipLast(pw string) string {
	last := byte('A')
	if pw[len(pw)-1] == 'A' {
		last = 'B'
	}
	return pw[:len(pw)-1] + string(last)
}

// refused tells mosquitto clients' "not authorised" (MQTT 3.1.1) and "Not
// authorized" (MQTT 5).
func refused(out string) bool { return strings.Contains(strings.ToLower(out), "not authori") }

func publish(t *testing.T, cl paho.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := cl.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// lateDir is a registry that gains camera late (with its login made by
// EnsureCamera, as the admin API does) just as Sync reads it; listed says
// whether the reading includes it.
type lateDir struct {
	cams   dynsec.CameraList
	late   camera
	listed bool
	acc    *dynsec.Accounts
}

func (l *lateDir) Cameras(ctx context.Context) ([]dynsec.Camera, error) {
	if err := l.acc.EnsureCamera(ctx, l.late.serial, l.late.key.Public()); err != nil {
		return nil, err
	}
	if l.listed {
		return append(l.cams, l.late.reg()), nil
	}
	return l.cams, nil
}

// The client matches answers to commands, also with many callers at once,
// and tells "exists" and "not found" apart.
func TestClientCorrelatesAnswers(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	resps, err := f.c.Do(ctx,
		dynsec.Command{"command": "createRole", "rolename": "probe"},
		dynsec.Command{"command": "createRole", "rolename": "probe"},
		dynsec.Command{"command": "getRole", "rolename": "no-such-role"},
		dynsec.Command{"command": "getRole", "rolename": "probe"})
	if err != nil {
		t.Fatal(err)
	}
	if resps[0].Err() != nil || !errors.Is(resps[1].Err(), dynsec.ErrExists) || !errors.Is(resps[2].Err(), dynsec.ErrNotFound) ||
		resps[3].Err() != nil || !strings.Contains(string(resps[3].Data), `"probe"`) {
		t.Fatalf("answers out of step: %+v", resps)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := "par-" + string(rune('a'+i))
			r, err := f.c.Do(ctx, dynsec.Command{"command": "createRole", "rolename": name}, dynsec.Command{"command": "getRole", "rolename": name})
			if err != nil || r[0].Err() != nil || !strings.Contains(string(r[1].Data), `"`+name+`"`) {
				t.Errorf("%s: %v %+v", name, err, r)
			}
		})
	}
	wg.Wait()

	// A wrong admin password is refused at once.
	_, err = dynsec.Dial(ctx, dynsec.Config{Broker: f.m.URL, Username: f.m.AdminUser, Password: "wrong", Log: quiet()})
	if err == nil {
		t.Fatal("dynsec admin connected with a wrong password")
	}
}

// The test: on a real mosquitto with dynamic security, camera X
// logs in as itself only, reads only its own command topic, writes only
// its own ack and status, and is gone once removed. The attacker's side
// uses mosquitto's own clients.
func TestCameraIdentityEnforcedByMosquitto(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	x, y := f.camera(t, "CAM-X"), f.camera(t, "CAM-Y")
	res, err := f.acc.Sync(ctx, dynsec.CameraList{x.reg(), y.reg()})
	if err != nil || res.Created != 2 {
		t.Fatalf("sync: %+v %v\n%s", res, err, f.m.Log())
	}
	acks := newInbox()
	srv, err := connect(t, f.m.URL, "camotp-server", "camotp-server", serverSecret, acks.handler)
	if err != nil {
		t.Fatalf("server login: %v", err)
	}
	if tok := srv.SubscribeMultiple(map[string]byte{"cams/+/ack": 1, "cams/+/status": 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("server subscribe: %v", tok.Error())
	}
	// Retained commands: a subscriber gets one the moment its subscription
	// is granted, so no test step waits on time.
	publish(t, srv, "cams/CAM-X/prov", "command for X", true)
	publish(t, srv, "cams/CAM-Y/prov", "command for Y", true)

	login := func(c camera) []string { return []string{"-i", c.serial, "-u", c.serial, "-P", c.pw} }
	// X reads its own command.
	out, err := f.m.Sub(append(login(x), "-V", "5", "-t", "cams/CAM-X/prov", "-C", "1", "-W", "10")...)
	if err != nil || !strings.Contains(out, "command for X") {
		t.Fatalf("X on its own topic: %v %q", err, out)
	}
	// X may not subscribe to Y's topic, nor around its own.
	for _, topic := range []string{"cams/CAM-Y/prov", "cams/+/prov", "#", "cams/CAM-X/#", "cams/CAM-Y/ack"} {
		for _, v := range []string{"5", "311"} {
			out, _ := f.m.Sub(append(login(x), "-V", v, "-t", topic, "-C", "1", "-W", "5")...)
			if !strings.Contains(out, "All subscription requests were denied") || strings.Contains(out, "command for Y") {
				t.Fatalf("X subscribing to %s (MQTT %s): %q; want the subscription denied", topic, v, out)
			}
		}
	}
	// X may not publish on Y's ack: MQTT 5 says so in the PUBACK; and the
	// server never sees it (its next, allowed, message arrives alone).
	out, _ = f.m.Pub(append(login(x), "-V", "5", "-q", "1", "-t", "cams/CAM-Y/ack", "-m", "forged ack for Y")...)
	if !refused(out) {
		t.Fatalf("X publishing on Y's ack: %q; want not authorised", out)
	}
	f.m.Pub(append(login(x), "-V", "311", "-q", "1", "-t", "cams/CAM-Y/status", "-m", "forged status for Y")...)
	f.m.Pub(append(login(x), "-V", "311", "-q", "1", "-t", "cams/CAM-X/prov", "-m", "X commands itself")...)
	if out, err := f.m.Pub(append(login(x), "-q", "1", "-t", "cams/CAM-X/ack", "-m", "ack from X")...); err != nil {
		t.Fatalf("X publishing its own ack: %v %q", err, out)
	}
	for _, m := range acks.waitFor(t, "cams/CAM-X/ack ack from X") {
		if strings.Contains(m, "forged") {
			t.Fatalf("server received %q", m)
		}
	}
	// Nobody but the server reads X's command: Y neither.
	if out, _ := f.m.Sub(append(login(y), "-t", "cams/CAM-X/prov", "-C", "1", "-W", "5")...); !strings.Contains(out, "denied") || strings.Contains(out, "command for X") {
		t.Fatalf("Y on X's topic: %q", out)
	}
	// X's own commands were not overwritten by its publish above.
	if out, _ := f.m.Sub(append(login(x), "-t", "cams/CAM-X/prov", "-C", "1", "-W", "10")...); !strings.Contains(out, "command for X") || strings.Contains(out, "itself") {
		t.Fatalf("X's command topic: %q", out)
	}

	// Wrong credentials are refused: a wrong password, Y's password, the
	// embedded broker's signed token, another client ID, no password.
	for name, args := range map[string][]string{
		"wrong password":   {"-i", "CAM-X", "-u", "CAM-X", "-P", flipLast(x.pw)},
		"Y's password":     {"-i", "CAM-X", "-u", "CAM-X", "-P", y.pw},
		"signed token":     {"-i", "CAM-X", "-u", "CAM-X", "-P", x.key.Token("CAM-X", time.Now())},
		"other client id":  {"-i", "not-x", "-u", "CAM-X", "-P", x.pw},
		"anonymous":        {"-i", "CAM-X"},
		"server, other id": {"-i", "probe", "-u", "camotp-server", "-P", serverSecret},
	} {
		out, err := f.m.Sub(append(args, "-t", "cams/CAM-X/prov", "-C", "1", "-W", "5")...)
		if err == nil || !refused(out) {
			t.Errorf("%s: err %v, output %q; want refused", name, err, out)
		}
	}

	// A removed camera is disconnected and can no longer log in.
	lost := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker(f.m.URL).SetClientID("CAM-X").SetUsername("CAM-X").SetPassword(x.pw).
		SetAutoReconnect(false).SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	xc := paho.NewClient(opts)
	if tok := xc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("X connect: %v", tok.Error())
	}
	defer xc.Disconnect(0)
	if err := f.acc.RemoveCamera(ctx, "CAM-X"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatal("removed camera still connected")
	}
	if out, err := f.m.Sub(append(login(x), "-t", "cams/CAM-X/prov", "-C", "1", "-W", "5")...); err == nil || !refused(out) {
		t.Fatalf("removed camera: %v %q; want refused", err, out)
	}
	if err := f.acc.RemoveCamera(ctx, "CAM-X"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	// Y is untouched.
	if out, err := f.m.Sub(append(login(y), "-t", "cams/CAM-Y/prov", "-C", "1", "-W", "10")...); err != nil || !strings.Contains(out, "command for Y") {
		t.Fatalf("Y after X's removal: %v %q", err, out)
	}
}

// Sync makes the plugin match the registry and is cheap when it does:
// connected cameras are not kicked, clients camotp did not make are never
// touched, and a changed server key changes every password.
func TestSyncReconciles(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	dynsec.SetPage(f.acc, 2) // every list takes several pages
	a, b, c := f.camera(t, "CAM-A"), f.camera(t, "CAM-B"), f.camera(t, "CAM-C")
	if res, err := f.acc.Sync(ctx, dynsec.CameraList{a.reg(), b.reg()}); err != nil || res.Created != 2 {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	// Default access is deny, as camotp set it.
	r, err := f.c.Do(ctx, dynsec.Command{"command": "getDefaultACLAccess"})
	if err != nil || r[0].Err() != nil || strings.Contains(string(r[0].Data), "true") {
		t.Fatalf("default ACL access: %v %s", err, r[0].Data)
	}
	ac, err := connect(t, f.m.URL, "CAM-A", "CAM-A", a.pw, nil)
	if err != nil {
		t.Fatalf("A login: %v", err)
	}
	// Again: nothing to do, A stays connected.
	if res, err := f.acc.Sync(ctx, dynsec.CameraList{a.reg(), b.reg()}); err != nil || res.Created+res.Updated+res.Removed != 0 {
		t.Fatalf("second sync: %+v %v", res, err)
	}
	publish(t, ac, "cams/CAM-A/status", "online", false)
	if !ac.IsConnectionOpen() {
		t.Fatal("a sync with nothing to change disconnected a camera")
	}

	// A client camotp did not make, named like a camera: left alone.
	resps, err := f.c.Do(ctx, dynsec.Command{"command": "createClient", "username": "CAM-F", "password": "operator's own"},
		dynsec.Command{"command": "createClient", "username": "camotp-srv-lookalike", "password": "x"})
	if err != nil || resps[0].Err() != nil {
		t.Fatalf("create foreign client: %v %+v", err, resps)
	}
	foreign := f.camera(t, "CAM-F")
	// B leaves the registry, C and F join.
	res, err := f.acc.Sync(ctx, dynsec.CameraList{a.reg(), c.reg(), foreign.reg()})
	if err != nil || res.Created != 1 || res.Removed != 1 || len(res.Foreign) != 1 || res.Foreign[0] != "CAM-F" {
		t.Fatalf("third sync: %+v %v", res, err)
	}
	if _, err := connect(t, f.m.URL, "CAM-B", "CAM-B", b.pw, nil); err == nil {
		t.Fatal("B logged in after leaving the registry")
	}
	if _, err := connect(t, f.m.URL, "CAM-C", "CAM-C", c.pw, nil); err != nil {
		t.Fatalf("C login: %v", err)
	}
	if _, err := connect(t, f.m.URL, "CAM-F", "CAM-F", "operator's own", nil); err != nil {
		t.Fatalf("the foreign client's password was changed: %v", err)
	}
	if err := f.acc.EnsureCamera(ctx, "CAM-F", foreign.key.Public()); !errors.Is(err, dynsec.ErrForeignClient) {
		t.Fatalf("EnsureCamera on a foreign client: %v; want ErrForeignClient", err)
	}
	// A camera may not take the server's name (no serial may start with
	// camotp-, and the server's login is not camotp's camera anyway).
	for _, name := range []string{"camotp-server", "camotp-server-n1"} {
		if err := f.acc.EnsureCamera(ctx, name, foreign.key.Public()); err == nil {
			t.Fatalf("camera named %s: accepted", name)
		}
	}
	if _, err := connect(t, f.m.URL, "camotp-server", "camotp-server", serverSecret, nil); err != nil {
		t.Fatalf("server login after a camera tried its name: %v", err)
	}
	// B's role went with it.
	if r, err := f.c.Do(ctx, dynsec.Command{"command": "getRole", "rolename": dynsec.CameraRolePrefix + "CAM-B"}); err != nil || !errors.Is(r[0].Err(), dynsec.ErrNotFound) {
		t.Fatalf("B's role: %v %+v", err, r)
	}

	// EnsureCamera is idempotent.
	if err := f.acc.EnsureCamera(ctx, "CAM-C", c.key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := f.acc.EnsureCamera(ctx, "CAM-C", c.key.Public()); err != nil {
		t.Fatal(err)
	}

	// A camera registered while a sync runs keeps the login it was just
	// given, whether or not the sync's reading of the registry has it.
	d := f.camera(t, "CAM-D")
	for _, listed := range []bool{false, true} { // first run: D has no login when the sync lists them
		dir := lateDir{cams: dynsec.CameraList{a.reg(), c.reg()}, late: d, listed: listed, acc: f.acc}
		if _, err := f.acc.Sync(ctx, &dir); err != nil {
			t.Fatal(err)
		}
		if _, err := connect(t, f.m.URL, "CAM-D", "CAM-D", d.pw, nil); err != nil {
			t.Fatalf("camera registered during a sync (in its reading: %v) lost its login: %v", listed, err)
		}
	}

	// A new server key (a re-key) gives every camera a new password.
	k, _ := camkey.Generate()
	rekeyed := dynsec.NewAccounts(f.c, k.Box, serverLogin, quiet())
	res, err = rekeyed.Sync(ctx, dynsec.CameraList{a.reg(), c.reg()})
	if err != nil || res.Updated != 2 {
		t.Fatalf("re-key sync: %+v %v", res, err)
	}
	if _, err := connect(t, f.m.URL, "CAM-A", "CAM-A", a.pw, nil); err == nil {
		t.Fatal("old password accepted after the re-key")
	}
	newPW, _ := a.key.BrokerPassword("CAM-A", camkey.BoxPublic(k.Box))
	if _, err := connect(t, f.m.URL, "CAM-A", "CAM-A", newPW, nil); err != nil {
		t.Fatalf("new password refused: %v", err)
	}
}
