package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testclock"
)

// TestParityWithSQLite runs one script of calls covering every method of
// storage.Store against both backends, each on its own manual clock, and
// compares what they answered call by call: the same values, the same
// sentinel errors. Random values (tokens, subjects) are compared by shape.
func TestParityWithSQLite(t *testing.T) {
	u := freshURL(t)
	start := time.UnixMilli(1_700_000_000_000)
	pclk, sclk := testclock.NewManual(start), testclock.NewManual(start)
	pg := openURL(t, u, pclk.Now)
	lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), testKey(t), sclk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	want := script(t, lite, sclk)
	got := script(t, pg, pclk)
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("step %d:\n sqlite:   %s\n postgres: %s", i, w, g)
		}
	}
	t.Logf("%d steps compared", len(want))
	if testing.Verbose() {
		t.Log("\n" + strings.Join(got, "\n"))
	}
}

// errClass names the sentinel err matches ("ok" for nil), without text
// that may differ between backends.
func errClass(err error) string {
	for _, e := range []error{storage.ErrNotFound, storage.ErrExists, storage.ErrConflict, storage.ErrReplayed, storage.ErrClosed} {
		if errors.Is(err, e) {
			return "err:" + e.Error()
		}
	}
	if err != nil {
		return "error"
	}
	return "ok"
}

// script calls every method and returns a transcript.
func script(t *testing.T, s storage.Store, clk *testclock.Manual) []string {
	ctx := context.Background()
	var out []string
	say := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	e := func(err error) string { return errClass(err) }

	// Users.
	say("add alice %s", e(s.AddUser(ctx, model.User{Username: "alice", Email: "a@pd", Phone: "+1", Role: "officer"}, "h1")))
	say("add alice again %s", e(s.AddUser(ctx, model.User{Username: "alice", Email: "x"}, "h")))
	say("add bob %s", e(s.AddUser(ctx, model.User{Username: "bob", Email: "b@pd"}, "h2")))
	u, hash, err := s.User(ctx, "alice")
	sub := u.Subject
	u.Subject = fmt.Sprintf("<%d hex>", len(sub))
	say("user alice %+v %s %s", u, hash, e(err))
	_, _, err = s.User(ctx, "nobody")
	say("user nobody %s", e(err))
	say("set password %s %s", e(s.SetPassword(ctx, "alice", "h3")), e(s.SetPassword(ctx, "nobody", "h")))
	bs, err := s.UserBySubject(ctx, sub)
	say("by subject %s %s", bs.Username, e(err))
	_, err = s.UserBySubject(ctx, "zz")
	say("by unknown subject %s", e(err))
	say("last method %s", e(s.SetLastMethod(ctx, "alice", "app")))
	us, err := s.Users(ctx)
	for i := range us {
		us[i].Subject = ""
	}
	say("users %+v %s", us, e(err))

	// Cameras and their lifecycle.
	say("add camera %s", e(s.AddCamera(ctx, "BC4-0001", device.Body4, "pk1")))
	say("add camera again %s", e(s.AddCamera(ctx, "BC4-0001", device.Body4, "pk1")))
	say("add camera 2 %s", e(s.AddCamera(ctx, "BC4-0002", device.Body3, "pk2")))
	c, err := s.Camera(ctx, "BC4-0001")
	say("camera %+v %s", c, e(err))
	_, err = s.Camera(ctx, "nope")
	say("camera nope %s", e(err))
	build := func(v uint64) ([]byte, error) { return []byte(fmt.Sprintf("cmd-%d", v)), nil }
	seed := device.DefaultSeed([]byte("12345678901234567890"))
	v, err := s.StartOp(ctx, "BC4-0001", model.OpRotate, &seed, nil, build)
	say("rotate registered %d %s", v, e(err))
	v, err = s.StartOp(ctx, "BC4-0001", model.OpProvision, &seed, []byte("ch"), build)
	say("provision %d %s", v, e(err))
	v, err = s.StartOp(ctx, "BC4-0001", model.OpProvision, &seed, []byte("ch2"), build)
	say("provision again %d %s", v, e(err))
	_, err = s.StartOp(ctx, "nope", model.OpProvision, &seed, nil, build)
	say("provision nope %s", e(err))
	p, err := s.Pending(ctx, "BC4-0001")
	say("pending %s %d %+v %q %q %s", p.Op, p.Version, *p.Seed, p.Challenge, p.Payload, e(err))
	_, err = s.Pending(ctx, "BC4-0002")
	say("pending none %s", e(err))
	ps, err := s.PendingSerials(ctx)
	say("pending serials %v %s", ps, e(err))
	_, err = s.ActiveSeed(ctx, "BC4-0001")
	say("active before %s", e(err))
	op, err := s.CompleteOp(ctx, "BC4-0001", 1)
	say("complete old version %s %s", op, e(err))
	op, err = s.CompleteOp(ctx, "BC4-0001", 2)
	say("complete %s %s", op, e(err))
	op, err = s.CompleteOp(ctx, "BC4-0001", 2)
	say("complete again %s %s", op, e(err))
	as, err := s.ActiveSeed(ctx, "BC4-0001")
	say("active %+v %s", as, e(err))
	v, err = s.StartOp(ctx, "BC4-0001", model.OpProvision, &seed, nil, build)
	say("provision provisioned %d %s", v, e(err))
	seed2 := device.DefaultSeed([]byte("abcdefghijabcdefghij"))
	v, err = s.StartOp(ctx, "BC4-0001", model.OpRotate, &seed2, nil, build)
	say("rotate %d %s", v, e(err))
	as, err = s.ActiveSeed(ctx, "BC4-0001")
	say("active during rotate %+v %s", as, e(err))
	op, err = s.CompleteOp(ctx, "BC4-0001", v)
	as, _ = s.ActiveSeed(ctx, "BC4-0001")
	say("rotated %s %s %+v", op, e(err), as)
	clk.Advance(time.Second)
	v, err = s.StartOp(ctx, "BC4-0001", model.OpWipe, nil, nil, build)
	say("wipe %d %s", v, e(err))
	_, err = s.ActiveSeed(ctx, "BC4-0001")
	say("active during wipe %s", e(err))
	states, err := s.CameraStates(ctx)
	say("states %v %s", states, e(err))
	op, err = s.CompleteOp(ctx, "BC4-0001", v)
	say("wiped %s %s", op, e(err))
	_, err = s.StartOp(ctx, "BC4-0001", model.OpWipe, nil, nil, build)
	say("wipe wiped %s", e(err))
	_, err = s.StartOp(ctx, "BC4-0001", model.Op("melt"), nil, nil, build)
	say("unknown op %s", e(err))
	say("touch %s", e(s.Touch(ctx, "BC4-0002", clk.Now().Add(time.Minute))))
	say("assign %s", e(s.Assign(ctx, "BC4-0002", "alice")))
	say("assign same %s", e(s.Assign(ctx, "BC4-0002", "alice")))
	say("assign other user %s", e(s.Assign(ctx, "BC4-0002", "bob")))
	say("assign second camera %s", e(s.Assign(ctx, "BC4-0001", "alice")))
	say("assign unknown user %s", e(s.Assign(ctx, "BC4-0001", "nobody")))
	say("assign unknown camera %s", e(s.Assign(ctx, "nope", "bob")))
	c, err = s.CameraOf(ctx, "alice")
	say("camera of alice %+v %s", c, e(err))
	_, err = s.CameraOf(ctx, "bob")
	say("camera of bob %s", e(err))
	u, _, _ = s.User(ctx, "alice")
	say("alice's camera %s", u.Camera)
	say("unassign %s %s", e(s.Unassign(ctx, "BC4-0002")), e(s.Unassign(ctx, "nope")))
	say("presence %s %s %s", e(s.SetPresence(ctx, "BC4-0001", true, clk.Now())), e(s.SetPresence(ctx, "BC4-0002", true, clk.Now())),
		e(s.SetPresence(ctx, "BC4-0001", false, clk.Now().Add(-time.Second))))
	s.AddCamera(ctx, "BC4-0003", device.Workforce, "pk3")
	s.StartOp(ctx, "BC4-0003", model.OpWipe, nil, nil, build)
	claims, err := s.ClaimResends(ctx, clk.Now(), time.Minute, 10)
	sort.Strings(claims)
	say("claim resends %v %s", claims, e(err))
	claims, err = s.ClaimResends(ctx, clk.Now().Add(30*time.Second), time.Minute, 10)
	say("claim again %v %s", claims, e(err))
	say("announce %s", e(s.Announce(ctx, storage.TopicPolicy)))
	n, err := s.OnlineCount(ctx)
	say("online %d %s", n, e(err))
	say("presence newer %s", e(s.SetPresence(ctx, "BC4-0002", false, clk.Now().Add(time.Second))))
	say("clear %s", e(s.ClearPresence(ctx, clk.Now())))
	n, _ = s.OnlineCount(ctx)
	cs, err := s.Cameras(ctx)
	say("cameras %d %+v %s", n, cs, e(err))

	// MFA.
	val, ok, err := s.Setting(ctx, "policy")
	say("setting unset %q %v %s", val, ok, e(err))
	say("set setting %s %s", e(s.SetSetting(ctx, "policy", "a")), e(s.SetSetting(ctx, "policy", "b")))
	val, ok, err = s.Setting(ctx, "policy")
	say("setting %q %v %s", val, ok, e(err))
	say("enrol %s", e(s.StartEnrolment(ctx, "alice", seed, time.Minute)))
	es, err := s.Enrolment(ctx, "alice")
	say("enrolment %+v %s", es, e(err))
	clk.Advance(2 * time.Minute)
	_, err = s.Enrolment(ctx, "alice")
	say("enrolment expired %s", e(err))
	_, err = s.AppSeed(ctx, "alice")
	say("app before %s", e(err))
	say("enrol again %s confirm %s", e(s.StartEnrolment(ctx, "alice", seed, time.Minute)), e(s.ConfirmApp(ctx, "alice", seed2)))
	_, err = s.Enrolment(ctx, "alice")
	app, err2 := s.AppSeed(ctx, "alice")
	say("after confirm: enrolment %s app %+v %s", e(err), app, e(err2))
	say("phone enrol %s", e(s.StartPhoneEnrolment(ctx, "alice", "+15550100", time.Minute)))
	ph, err := s.PhoneEnrolment(ctx, "alice")
	say("phone enrolment %s %s", ph, e(err))
	_, err = s.Phone(ctx, "alice")
	say("phone before %s", e(err))
	say("confirm phone %s", e(s.ConfirmPhone(ctx, "alice", "+15550100")))
	ph, err = s.Phone(ctx, "alice")
	_, err2 = s.PhoneEnrolment(ctx, "alice")
	say("phone %s %s enrolment %s", ph, e(err), e(err2))
	ms, err := s.Methods(ctx, "alice")
	say("methods %v %s", ms, e(err))
	say("set codes %s", e(s.SetBackupCodes(ctx, "alice", []string{"AAAA", "BBBB", "CCCC"})))
	ok1, err1 := s.UseBackupCode(ctx, "alice", "BBBB")
	ok2, err2 := s.UseBackupCode(ctx, "alice", "BBBB")
	ok3, _ := s.UseBackupCode(ctx, "bob", "AAAA")
	ok4, _ := s.UseBackupCode(ctx, "alice", "ZZZZ")
	left, err3 := s.BackupCodesLeft(ctx, "alice")
	say("backup codes %v %s %v %s %v %v left %d %s", ok1, e(err1), ok2, e(err2), ok3, ok4, left, e(err3))
	say("sent code %s", e(s.PutSentCode(ctx, "alice", "login", "123456", time.Minute)))
	ok1, _ = s.UseSentCode(ctx, "alice", "login", "654321")
	ok2, _ = s.UseSentCode(ctx, "alice", "other", "123456")
	ok3, _ = s.UseSentCode(ctx, "alice", "login", "123456")
	ok4, _ = s.UseSentCode(ctx, "alice", "login", "123456")
	say("sent codes %v %v %v %v", ok1, ok2, ok3, ok4)
	s.PutSentCode(ctx, "alice", "login", "111111", time.Minute)
	s.PutSentCode(ctx, "alice", "login", "222222", time.Minute)
	ok1, _ = s.UseSentCode(ctx, "alice", "login", "111111")
	clk.Advance(2 * time.Minute)
	ok2, _ = s.UseSentCode(ctx, "alice", "login", "222222")
	say("replaced and expired %v %v", ok1, ok2)
	say("remove method %s %s", e(s.RemoveMethod(ctx, "alice", "phone")), e(s.RemoveMethod(ctx, "alice", "phone")))
	trust, _ := s.CreateToken(ctx, model.TokenTrust, "alice", "", "ip", time.Hour)
	s.PutSentCode(ctx, "alice", "login", "333333", time.Minute)
	say("reset %s", e(s.ResetMFA(ctx, "alice")))
	ms, _ = s.Methods(ctx, "alice")
	left, _ = s.BackupCodesLeft(ctx, "alice")
	_, err = s.LookupToken(ctx, model.TokenTrust, trust)
	ok1, _ = s.UseSentCode(ctx, "alice", "login", "333333")
	u, _, _ = s.User(ctx, "alice")
	say("after reset %v %d %s %v %q", ms, left, e(err), ok1, u.LastMethod)
	for i := range 3 {
		say("outbox %s", e(s.AddOutbox(ctx, model.OutboxMessage{Channel: "sms", Address: "+1", Subject: fmt.Sprint(i), Body: "b"})))
	}
	ob, err := s.Outbox(ctx, 2)
	say("outbox %+v %s", ob, e(err))

	// Throttles.
	r := model.ThrottleRule{Key: "k", Limit: 2, Window: time.Minute, BlockBase: time.Minute, BlockMax: 4 * time.Minute}
	acct := model.ThrottleRule{Key: "acct", Limit: 5, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
	now := clk.Now()
	for i := range 3 {
		res, err := s.ReserveAttempt(ctx, now, r, acct)
		say("reserve %d %+v %s", i, res, e(err))
	}
	fr, err := s.RecordFailure(ctx, now, r, acct)
	say("failure %+v %s", fr, e(err))
	fr, err = s.RecordFailure(ctx, now, r, acct)
	say("failure again %+v %s", fr, e(err))
	res, _ := s.ReserveAttempt(ctx, now.Add(30*time.Second), r, acct)
	say("reserve blocked %+v", res)
	later := now.Add(2 * time.Minute)
	res, _ = s.ReserveAttempt(ctx, later, r, acct)
	say("reserve after block %+v", res)
	say("release %s", e(s.ReleaseAttempt(ctx, res, r, acct)))
	ths, err := s.GetThrottles(ctx, "k", "acct", "none")
	say("throttles %+v %s", ths, e(err))
	res, _ = s.ReserveAttempt(ctx, later, r)
	s.ReserveAttempt(ctx, later, r)
	fr, _ = s.RecordFailure(ctx, later, r)
	say("second block %+v", fr)
	say("success %s", e(s.RecordSuccess(ctx, r, acct)))
	ths, _ = s.GetThrottles(ctx, "k", "acct")
	say("after success %+v", ths)
	say("purge %s", e(s.PurgeThrottles(ctx, later.Add(3*time.Hour), time.Hour)))
	ths, _ = s.GetThrottles(ctx, "k", "acct")
	say("after purge %+v", ths)
	say("no rules %s", e(s.RecordSuccess(ctx)))
	ths, err = s.GetThrottles(ctx)
	say("no keys %v %s", ths, e(err))

	// Tokens and the replay record.
	st, found, err := s.OTPState(ctx, "BC4-0002")
	say("otp none %+v %v %s", st, found, e(err))
	for _, c := range []struct {
		ver         uint64
		step, drift int64
	}{{1, 100, 0}, {1, 100, 0}, {1, 99, 0}, {1, 101, 1}, {2, 50, 0}, {1, 200, 0}} {
		ok, err := s.AcceptStep(ctx, "BC4-0002", c.ver, c.step, c.drift)
		say("accept %v %v %s", c, ok, e(err))
	}
	say("resync %s", e(s.SetResync(ctx, "BC4-0002", 2, 7, 60)))
	st, found, _ = s.OTPState(ctx, "BC4-0002")
	off := *st.ResyncOffset
	st.ResyncOffset = nil
	say("otp %+v %d %v", st, off, found)
	say("resync new seed %s", e(s.SetResync(ctx, "BC4-0002", 3, -4, 70)))
	st, _, _ = s.OTPState(ctx, "BC4-0002")
	off = *st.ResyncOffset
	st.ResyncOffset = nil
	say("otp %+v %d", st, off)
	ok, _ = s.AcceptStep(ctx, "BC4-0002", 3, 71, -4)
	st, _, _ = s.OTPState(ctx, "BC4-0002")
	say("accept clears resync %v %+v", ok, st)
	pend, err := s.CreateToken(ctx, model.TokenPending, "alice", "bodycam", "ip", time.Minute)
	say("create %d %s", len(pend), e(err))
	tk, err := s.LookupToken(ctx, model.TokenPending, pend)
	say("lookup %+v %s", tk, e(err))
	_, err = s.LookupToken(ctx, model.TokenSession, pend)
	_, err2 = s.LookupToken(ctx, model.TokenPending, "")
	_, err3 = s.LookupToken(ctx, model.TokenPending, strings.Repeat("x", 200))
	say("lookup wrong kind %s empty %s long %s", e(err), e(err2), e(err3))
	s.ReserveAttempt(ctx, clk.Now(), r)
	s.RecordFailure(ctx, clk.Now(), r)
	sess, err := s.ExchangeToken(ctx, pend, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
		nil, model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Clear(r))
	say("exchange %d %s", len(sess), e(err))
	_, err = s.ExchangeToken(ctx, pend, model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, model.AuditEntry{Action: "x", Subject: "alice"}, model.Settlement{})
	say("exchange again %s", e(err))
	ths, _ = s.GetThrottles(ctx, "k")
	tk, err = s.LookupToken(ctx, model.TokenSession, sess)
	say("session %+v %s; counter %+v", tk, e(err), ths)
	pend2, _ := s.CreateToken(ctx, model.TokenPending, "alice", "radius", "ip2", time.Minute)
	say("consume %s again %s", e(s.ConsumeToken(ctx, pend2, nil, model.AuditEntry{Actor: "alice", Action: "radius", Subject: "alice", Result: "ok"}, model.Settlement{})),
		e(s.ConsumeToken(ctx, pend2, nil, model.AuditEntry{Action: "x", Subject: "alice"}, model.Settlement{})))
	s.CreateToken(ctx, model.TokenTrust, "alice", "", "ip", time.Hour)
	clk.Advance(time.Second)
	s.CreateToken(ctx, model.TokenPending, "alice", "", "ip", time.Second)
	toks, err := s.UserTokens(ctx, "alice")
	say("user tokens %+v %s", toks, e(err))
	say("delete token %s %s", e(s.DeleteToken(ctx, sess)), e(s.DeleteToken(ctx, sess)))
	say("delete trust %s", e(s.DeleteTokens(ctx, "alice", model.TokenTrust)))
	toks, _ = s.UserTokens(ctx, "alice")
	say("user tokens %+v", toks)
	clk.Advance(2 * time.Second)
	toks, _ = s.UserTokens(ctx, "alice")
	say("expired hidden %+v", toks)
	s.CreateToken(ctx, model.TokenTrust, "alice", "", "ip", time.Hour)
	say("delete all %s", e(s.DeleteTokens(ctx, "alice", "")))
	toks, _ = s.UserTokens(ctx, "alice")
	say("none left %d", len(toks))

	// OIDC.
	cl := model.OIDCClient{ID: "app", SecretHash: []byte{1, 2, 3}, RedirectURIs: []string{"https://a/cb", "https://b/cb"}}
	say("add client %s %s", e(s.AddOIDCClient(ctx, cl)), e(s.AddOIDCClient(ctx, cl)))
	say("add public %s", e(s.AddOIDCClient(ctx, model.OIDCClient{ID: "pub", Public: true, RedirectURIs: []string{}})))
	gc, err := s.OIDCClient(ctx, "app")
	say("client %+v %s", gc, e(err))
	_, err = s.OIDCClient(ctx, "none")
	say("client none %s", e(err))
	gcs, err := s.OIDCClients(ctx)
	say("clients %+v %s", gcs, e(err))
	t1 := clk.Now()
	say("key 1 %s", e(s.AddOIDCKey(ctx, model.OIDCKey{ID: "k1", Alg: "RS256", Private: []byte("der1")})))
	clk.Advance(time.Minute)
	say("key 2 %s", e(s.AddOIDCKey(ctx, model.OIDCKey{ID: "k2", Alg: "ES256", Private: []byte("der2")})))
	say("key 3 same ms %s", e(s.AddOIDCKey(ctx, model.OIDCKey{ID: "k3", Alg: "ES256", Private: []byte("der3")})))
	keys, err := s.OIDCKeys(ctx, time.Time{})
	say("keys %s", e(err))
	for _, k := range keys {
		say("  %s %s %s %v %v", k.ID, k.Alg, k.Private, k.CreatedAt, k.RetiredAt)
	}
	keys, _ = s.OIDCKeys(ctx, t1.Add(30*time.Second))
	say("keys since %d", len(keys))
	say("auth request %s", e(s.CreateOIDCAuthRequest(ctx, "ar1", "app", []byte(`{"scope":"openid"}`), time.Minute)))
	ar, err := s.OIDCAuthRequest(ctx, "ar1")
	say("auth request %+v %s", ar, e(err))
	say("code before sign-in %s", e(s.SaveOIDCCode(ctx, "ar1", "code1", time.Minute)))
	say("complete %s again %s unknown %s", e(s.CompleteOIDCAuthRequest(ctx, "ar1", []byte(`{"user":"alice"}`))),
		e(s.CompleteOIDCAuthRequest(ctx, "ar1", []byte(`{}`))), e(s.CompleteOIDCAuthRequest(ctx, "zz", []byte(`{}`))))
	say("code %s again %s", e(s.SaveOIDCCode(ctx, "ar1", "code1", time.Minute)), e(s.SaveOIDCCode(ctx, "ar1", "code2", time.Minute)))
	_, err = s.OIDCAuthRequest(ctx, "ar1")
	say("auth request once coded %s", e(err))
	say("access token %s", e(s.AddOIDCToken(ctx, model.OIDCToken{ID: "at0", AuthRequest: "ar1", ClientID: "app", Username: "alice",
		Scopes: []string{"openid"}, ExpiresAt: clk.Now().Add(time.Hour)})))
	ar, err = s.ConsumeOIDCCode(ctx, "code1")
	say("consume code %+v %s", ar, e(err))
	say("access token %s", e(s.AddOIDCToken(ctx, model.OIDCToken{ID: "at1", AuthRequest: "ar1", ClientID: "app", Username: "alice",
		Scopes: []string{"openid", "profile"}, ExpiresAt: clk.Now().Add(time.Hour)})))
	at, err := s.OIDCToken(ctx, "at1")
	say("token %+v %s", at, e(err))
	_, err = s.ConsumeOIDCCode(ctx, "code1")
	_, err2 = s.OIDCToken(ctx, "at1")
	say("replayed code %s; its token %s", e(err), e(err2))
	_, err = s.ConsumeOIDCCode(ctx, "nope")
	say("unknown code %s", e(err))
	say("delete used request %s", e(s.DeleteOIDCAuthRequest(ctx, "ar1")))
	_, err = s.ConsumeOIDCCode(ctx, "code1")
	say("still replayed %s", e(err))
	s.CreateOIDCAuthRequest(ctx, "ar2", "app", []byte(`{}`), time.Minute)
	s.CompleteOIDCAuthRequest(ctx, "ar2", []byte(`{}`))
	s.SaveOIDCCode(ctx, "ar2", "code3", time.Minute)
	clk.Advance(2 * time.Minute)
	_, err = s.ConsumeOIDCCode(ctx, "code3")
	say("expired code %s", e(err))
	s.AddOIDCToken(ctx, model.OIDCToken{ID: "at2", AuthRequest: "ar3", ClientID: "app", Username: "alice", ExpiresAt: clk.Now().Add(time.Hour)})
	say("revoke %s %s", e(s.RevokeOIDCToken(ctx, "at2", "other")), e(s.RevokeOIDCToken(ctx, "none", "app")))
	_, err = s.OIDCToken(ctx, "at2")
	say("token of another client kept %s", e(err))
	say("revoke own %s", e(s.RevokeOIDCToken(ctx, "at2", "app")))
	_, err = s.OIDCToken(ctx, "at2")
	say("revoked %s", e(err))
	s.CreateOIDCAuthRequest(ctx, "ar4", "app", []byte(`{}`), time.Minute)
	say("delete request %s", e(s.DeleteOIDCAuthRequest(ctx, "ar4")))
	_, err = s.OIDCAuthRequest(ctx, "ar4")
	say("deleted %s", e(err))
	s.CreateOIDCAuthRequest(ctx, "ar5", "app", []byte(`{}`), time.Minute)
	s.AddOIDCToken(ctx, model.OIDCToken{ID: "at5", AuthRequest: "ar5", ClientID: "app", Username: "alice", ExpiresAt: clk.Now().Add(time.Hour)})
	say("remove client %s again %s", e(s.RemoveOIDCClient(ctx, "app")), e(s.RemoveOIDCClient(ctx, "app")))
	_, err = s.OIDCAuthRequest(ctx, "ar5")
	_, err2 = s.OIDCToken(ctx, "at5")
	say("with its requests %s and tokens %s", e(err), e(err2))

	// RADIUS clients.
	rc := model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.1.2.3/24"), Secret: []byte("s3cret")}
	say("radius %s", e(s.AddRadiusClient(ctx, rc)))
	say("radius dup name %s", e(s.AddRadiusClient(ctx, model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("192.0.2.0/24"), Secret: []byte("x")})))
	say("radius dup cidr %s", e(s.AddRadiusClient(ctx, model.RadiusClient{Name: "vpn2", CIDR: netip.MustParsePrefix("10.1.2.0/24"), Secret: []byte("x")})))
	rcs, err := s.RadiusClients(ctx)
	say("radius clients %+v %s", rcs, e(err))
	say("radius remove %s %s", e(s.RemoveRadiusClient(ctx, "vpn1")), e(s.RemoveRadiusClient(ctx, "vpn1")))

	// Purge of expired rows.
	s.CreateToken(ctx, model.TokenSession, "bob", "", "", time.Minute)
	s.CreateOIDCAuthRequest(ctx, "ar6", "pub", []byte(`{}`), time.Minute)
	clk.Advance(time.Hour)
	say("purge expired %s", e(s.PurgeExpired(ctx)))

	// Text SQLite holds and PostgreSQL cannot (NUL, invalid UTF-8), as
	// clients may send in a username, a client or token ID, a serial:
	// nothing matches it.
	for _, bad := range []string{"a\x00b", "\xff\xfe", "al\xc3"} {
		_, _, err := s.User(ctx, bad)
		_, err2 := s.OIDCClient(ctx, bad)
		_, err3 := s.OIDCToken(ctx, bad)
		_, err4 := s.LookupToken(ctx, bad, "tok")
		_, err5 := s.StartOp(ctx, bad, model.OpWipe, nil, nil, build)
		_, err6 := s.CompleteOp(ctx, bad, 1)
		say("bad text %q: user %s client %s token %s lookup %s startop %s complete %s", bad, e(err), e(err2), e(err3), e(err4), e(err5), e(err6))
		_, err = s.UserBySubject(ctx, bad)
		_, err2 = s.CameraOf(ctx, bad)
		_, err3 = s.Pending(ctx, bad)
		_, err4 = s.OIDCAuthRequest(ctx, bad)
		ms, err5 := s.Methods(ctx, bad)
		say("  subject %s camera-of %s pending %s auth %s methods %v %s", e(err), e(err2), e(err3), e(err4), ms, e(err5))
		say("  revoke %s touch %s presence %s assign %s delete %s", e(s.RevokeOIDCToken(ctx, bad, "app")), e(s.Touch(ctx, bad, clk.Now())),
			e(s.SetPresence(ctx, bad, true, clk.Now())), e(s.Assign(ctx, bad, "bob")), e(s.DeleteTokens(ctx, bad, "")))
		ok, err := s.UseBackupCode(ctx, bad, "AAAA")
		say("  backup %v %s", ok, e(err))
		// Throttle keys are built from such names, and from raw digests.
		k := model.ThrottleRule{Key: "password:acct:" + bad + "\x00\x8f\x00", Limit: 1, Window: time.Minute, BlockBase: time.Minute, BlockMax: time.Minute}
		r1, err := s.ReserveAttempt(ctx, clk.Now(), k)
		r2, err2 := s.ReserveAttempt(ctx, clk.Now(), k)
		f, err3 := s.RecordFailure(ctx, clk.Now(), k)
		ths, err4 := s.GetThrottles(ctx, k.Key, "x")
		say("  throttle %v %s %v %s %+v %s %+v %s", r1.Granted, e(err), r2.Granted, e(err2), f, e(err3), ths, e(err4))
		cp, err := s.CameraPage(ctx, model.CameraQuery{Search: bad})
		up, err2 := s.UserPage(ctx, model.UserQuery{Search: bad})
		ap, err3 := s.AuditPage(ctx, model.AuditQuery{AuditFilter: model.AuditFilter{Subject: bad}})
		ap2, err4 := s.AuditPage(ctx, model.AuditQuery{AuditFilter: model.AuditFilter{Actor: bad + "*"}})
		kt, err5 := s.ThrottlesIn(ctx, model.KeyPrefix("password:acct:"+bad))
		say("  console cameras %d/%d %s users %d/%d %s audit %d %s %d %s throttles %d %s", len(cp.Cameras), cp.Total, e(err),
			len(up.Users), up.Total, e(err2), len(ap), e(err3), len(ap2), e(err4), len(kt), e(err5))
	}

	// The console's reads and its all-or-nothing assignment.
	tstr := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	istr := func(i *int64) string {
		if i == nil {
			return "-"
		}
		return fmt.Sprint(*i)
	}
	for _, q := range []model.CameraQuery{{}, {Sort: model.SortLastSeen, Desc: true}, {Sort: model.SortOffset}, {Search: "bc4", Size: 1, Page: 2}} {
		cp, err := s.CameraPage(ctx, q)
		say("camera page %+v: %d %s", q, cp.Total, e(err))
		for _, r := range cp.Cameras {
			say("  %s %s %s %s v%d online %v seen %s seed %s offset %s signin %s", r.Serial, r.Model, r.State, r.AssignedUser, r.Version,
				r.Online, tstr(r.LastSeen), tstr(r.SeedAt), istr(r.Offset), tstr(r.LastSignIn))
		}
	}
	cr, err := s.CameraRow(ctx, "BC4-0001")
	say("camera row %s %s seed %s offset %s signin %s %s", cr.Serial, cr.State, tstr(cr.SeedAt), istr(cr.Offset), tstr(cr.LastSignIn), e(err))
	_, err = s.CameraRow(ctx, "nope")
	say("camera row nope %s", e(err))
	up, err := s.UserPage(ctx, model.UserQuery{})
	say("user page %d %s", up.Total, e(err))
	for _, u := range up.Users {
		say("  %s %s %s camera %q signin %s", u.Username, u.Role, u.Email, u.Camera, tstr(u.LastSignIn))
	}
	aerr := s.AssignAll(ctx, []model.Assignment{{Serial: "BC4-0002", Username: "bob"}, {Serial: "nope", Username: "bob"}})
	var ae *model.AssignmentError
	say("assign all bad %v %s", errors.As(aerr, &ae) && ae.Index == 1, e(aerr))
	kt, err := s.ThrottlesIn(ctx, model.KeyPrefix("p"), model.KeyPrefix("o"))
	say("throttles in %d %s", len(kt), e(err))
	for _, k := range kt {
		say("  %q %+v", k.Key, k.Throttle)
	}
	n, err = s.ClearThrottles(ctx, model.KeyPrefix("password:"))
	say("clear throttles %d %s", n, e(err))

	// Audit and health.
	say("audit %s", e(s.Audit(ctx, model.AuditEntry{Actor: "admin", Action: "user.add", Subject: "bob", Result: "ok", SourceIP: "1.2.3.4", Detail: "d"})))
	say("audit at %s", e(s.Audit(ctx, model.AuditEntry{At: time.UnixMilli(1_600_000_000_123), Actor: "a", Action: "b", Subject: "bob", Result: "ok"})))
	log, err := s.AuditLog(ctx, "bob", 10)
	say("audit log bob %+v %s", log, e(err))
	log, _ = s.AuditLog(ctx, "", 0)
	say("audit log all %d", len(log))
	ap, err := s.AuditPage(ctx, model.AuditQuery{AuditFilter: model.AuditFilter{Subject: "bob"}, Limit: 1})
	say("audit page bob %d %s", len(ap), e(err))
	for _, a := range ap {
		say("  %s %s %s %s %s", a.At.UTC().Format(time.RFC3339Nano), a.Actor, a.Action, a.Subject, a.Result)
	}
	ap, err = s.AuditPage(ctx, model.AuditQuery{AuditFilter: model.AuditFilter{Subject: "bob"}, Limit: 1, Before: ap[0].ID})
	say("audit page bob older %d %s %s", len(ap), ap[0].Actor, e(err))
	count := 0
	err = s.AuditEach(ctx, model.AuditFilter{Action: "login.*"}, func(model.AuditEntry) error { count++; return nil })
	say("audit each login.* %d %s", count, e(err))
	say("audit failures %d", s.AuditFailures())
	say("ping %s probe %s", e(s.Ping(ctx)), e(s.ProbeWrite(ctx)))
	ver, err := s.SchemaVersion(ctx)
	say("schema %d %s", ver, e(err))
	return out
}
