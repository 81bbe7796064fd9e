package radius

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/signin"
)

// fakeSignIn stands in for the sign-in service: password "pw", code
// "123456"; it counts the codes it evaluated.
type fakeSignIn struct {
	codes atomic.Int64
}

func (f *fakeSignIn) Login(_ context.Context, user, pw, _, _ string) (signin.LoginResult, error) {
	if pw != "pw" {
		return signin.LoginResult{}, signin.ErrBadCredentials
	}
	return signin.LoginResult{Username: user, Pending: "pending-" + user, Method: signin.MethodBodycam, Model: device.Body4,
		Methods: signin.UserMethods{Available: []string{signin.MethodBodycam}}}, nil
}

func (f *fakeSignIn) VerifyOnly(_ context.Context, pending, method, code, _ string) error {
	f.codes.Add(1)
	if code == "123456" && method == signin.MethodBodycam && strings.HasPrefix(pending, "pending-") {
		return nil
	}
	return &signin.CodeError{AttemptsLeft: 2}
}

func (f *fakeSignIn) SendCode(context.Context, string, string, string) (string, error) {
	return "", signin.ErrNoMethod
}

type fakeClients []model.RadiusClient

func (c fakeClients) RadiusClients(context.Context) ([]model.RadiusClient, error) { return c, nil }

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	nas    = netip.MustParseAddrPort("192.0.2.10:40000")
	other  = netip.MustParseAddrPort("192.0.2.99:40000")
	secret = []byte("shared-secret-of-vpn1")
)

func newTestServer(t testing.TB, cfg Config) (*Server, *fakeSignIn, *testClock) {
	clk := &testClock{t: time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	svc := &fakeSignIn{}
	s := New(svc, fakeClients{
		{Name: "vpn1", CIDR: netip.MustParsePrefix("192.0.2.10/32"), Secret: secret},
		{Name: "vpn-net", CIDR: netip.MustParsePrefix("192.0.2.0/24"), Secret: []byte("net-secret")},
	}, cfg)
	t.Cleanup(func() { s.Close() })
	return s, svc, clk
}

// request encodes an Access-Request signed with key (no
// Message-Authenticator when key is nil).
func request(t testing.TB, key []byte, attrs func(*radius.Packet)) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, secret)
	if key != nil {
		p.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	}
	attrs(p)
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		off, _ := findMessageAuthenticator(b)
		copy(b[off:], messageAuthenticator(b, off, b[4:20], key))
	}
	return b
}

func papAttrs(user, pw string, extra ...func(*radius.Packet)) func(*radius.Packet) {
	return func(p *radius.Packet) {
		rfc2865.UserName_SetString(p, user)
		rfc2865.UserPassword_SetString(p, pw)
		for _, e := range extra {
			e(p)
		}
	}
}

// answerOf checks and parses a reply to req.
func answerOf(t testing.TB, reply, req []byte) *radius.Packet {
	t.Helper()
	if reply == nil {
		t.Fatal("no answer")
	}
	if !radius.IsAuthenticResponse(reply, req, secret) {
		t.Fatal("bad Response Authenticator")
	}
	off, err := findMessageAuthenticator(reply)
	if err != nil || off != 22 {
		t.Fatalf("Message-Authenticator at %d (%v), want first", off, err)
	}
	if !hmac.Equal(reply[off:off+16], messageAuthenticator(reply, off, req[4:20], secret)) {
		t.Fatal("bad Message-Authenticator")
	}
	p, err := radius.Parse(reply, secret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMessageAuthenticatorIndependent checks the attribute against a
// computation written straight from RFC 3579 §3.2 on a hand-made packet.
func TestMessageAuthenticatorIndependent(t *testing.T) {
	pkt := []byte{1, 7, 0, 0}
	auth := []byte("0123456789abcdef")
	pkt = append(pkt, auth...)
	pkt = append(pkt, 1, 7, 'a', 'l', 'i', 'c', 'e')
	pkt = append(pkt, 80, 18)
	pkt = append(pkt, make([]byte, 16)...)
	pkt[3] = byte(len(pkt))
	mac := hmac.New(md5.New, []byte("k"))
	mac.Write(pkt) // the value is still zero
	want := mac.Sum(nil)
	off, err := findMessageAuthenticator(pkt)
	if err != nil || off != 29 {
		t.Fatalf("offset %d, %v", off, err)
	}
	copy(pkt[off:], want)
	if !checkRequest(pkt, off, []byte("k")) {
		t.Fatal("a correct Message-Authenticator is refused")
	}
	if checkRequest(pkt, off, []byte("K")) {
		t.Fatal("a Message-Authenticator made with another secret is accepted")
	}
	pkt[25] ^= 1 // tamper with User-Name
	if checkRequest(pkt, off, []byte("k")) {
		t.Fatal("a tampered packet is accepted")
	}
	twice := append(append([]byte{}, pkt...), pkt[27:]...) // a second Message-Authenticator
	twice[3] = byte(len(twice))
	badLen := append([]byte{}, pkt...)
	badLen[21] = 200 // User-Name's length runs past the packet
	for _, bad := range [][]byte{twice, badLen, pkt[:len(pkt)-1]} {
		if _, err := findMessageAuthenticator(bad); err == nil {
			t.Errorf("malformed packet % x accepted", bad)
		}
	}
}

// TestChallengeFlow: the State is bound to its client and user, answered
// once, and only within 5 minutes of the injected clock.
func TestChallengeFlow(t *testing.T) {
	s, svc, clk := newTestServer(t, Config{})
	ctx := context.Background()
	challenge := func() []byte {
		t.Helper()
		req := request(t, secret, papAttrs("alice", "pw"))
		reply, result := s.handle(ctx, req, nas)
		p := answerOf(t, reply, req)
		if p.Code != radius.CodeAccessChallenge || result != ResultChallenge {
			t.Fatalf("password step: %v %s", p.Code, result)
		}
		return rfc2865.State_Get(p)
	}
	answer := func(state []byte, user, code string, from netip.AddrPort, key []byte) (*radius.Packet, string) {
		t.Helper()
		req := request(t, key, papAttrs(user, code, func(p *radius.Packet) { rfc2865.State_Set(p, state) }))
		reply, result := s.handle(ctx, req, from)
		if reply == nil {
			t.Fatalf("no answer (%s)", result)
		}
		p, err := radius.Parse(reply, key)
		if err != nil {
			t.Fatal(err)
		}
		return p, result
	}
	st := challenge()
	if p, _ := answer(st, "alice", "123456", nas, secret); p.Code != radius.CodeAccessAccept {
		t.Fatalf("right code: %v", p.Code)
	}
	if p, _ := answer(st, "alice", "123456", nas, secret); p.Code != radius.CodeAccessReject {
		t.Fatal("a State was answered twice")
	}
	// Another user or another client cannot answer alice's State — nor
	// burn it: alice answers it afterwards (the State travels in clear).
	st = challenge()
	if p, _ := answer(st, "bob", "123456", nas, secret); p.Code != radius.CodeAccessReject {
		t.Fatal("another user answered alice's State")
	}
	if p, _ := answer(st, "alice", "123456", other, []byte("net-secret")); p.Code != radius.CodeAccessReject {
		t.Fatal("another client answered vpn1's State")
	}
	if p, _ := answer(st, "alice", "123456", nas, secret); p.Code != radius.CodeAccessAccept {
		t.Fatal("a State tried by another user and another client no longer worked for alice")
	}
	st = challenge()
	clk.add(5*time.Minute + time.Second)
	if p, _ := answer(st, "alice", "123456", nas, secret); p.Code != radius.CodeAccessReject || !strings.Contains(rfc2865.ReplyMessage_GetString(p), "expired") {
		t.Fatal("an expired State was accepted")
	}
	if n := svc.codes.Load(); n != 2 {
		t.Fatalf("%d codes evaluated; only alice's own answers reach the sign-in service", n)
	}
	if n := s.challenges.len(); n != 0 {
		t.Fatalf("%d challenges left over", n)
	}
}

// TestRetransmission: the same request sent again gets the same answer
// without a second evaluation (a retransmitted code is not a replay).
func TestRetransmission(t *testing.T) {
	s, svc, clk := newTestServer(t, Config{Separator: ","})
	ctx := context.Background()
	req := request(t, secret, papAttrs("alice", "pw,123456"))
	first, r1 := s.handle(ctx, req, nas)
	again, r2 := s.handle(ctx, req, nas)
	if r1 != ResultAccept || r2 != ResultDuplicate || string(first) != string(again) {
		t.Fatalf("first %s, again %s (same bytes: %v)", r1, r2, string(first) == string(again))
	}
	if n := svc.codes.Load(); n != 1 {
		t.Fatalf("%d evaluations", n)
	}
	clk.add(replyTTL)
	if _, r := s.handle(ctx, req, nas); r != ResultAccept || svc.codes.Load() != 2 {
		t.Fatalf("after the cache's TTL: %s, %d evaluations", r, svc.codes.Load())
	}
}

// TestAnswers: Proxy-State is echoed in order, long messages are split
// into Reply-Messages of at most 253 bytes, Status-Server is answered
// only with a Message-Authenticator, CHAP is refused with a reason, and
// the most specific client's secret is the one that checks.
func TestAnswers(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	ctx := context.Background()
	req := request(t, secret, papAttrs("alice", "pw", func(p *radius.Packet) {
		rfc2865.ProxyState_Add(p, []byte("one"))
		rfc2865.ProxyState_Add(p, []byte("two"))
	}))
	reply, _ := s.handle(ctx, req, nas)
	p := answerOf(t, reply, req)
	ps, _ := rfc2865.ProxyState_Gets(p)
	if len(ps) != 2 || string(ps[0]) != "one" || string(ps[1]) != "two" {
		t.Fatalf("Proxy-State: %q", ps)
	}
	msgs, _ := rfc2865.ReplyMessage_GetStrings(p)
	if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, " "), "Double-press Select") {
		t.Fatalf("Reply-Messages: %q", msgs)
	}
	for _, m := range msgs {
		if len(m) > 253 {
			t.Fatalf("Reply-Message of %d bytes", len(m))
		}
	}

	status := radius.New(radius.CodeStatusServer, secret)
	status.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	raw, _ := status.Encode()
	copy(raw[22:], messageAuthenticator(raw, 22, raw[4:20], secret))
	if reply, r := s.handle(ctx, raw, nas); r != ResultStatus || answerOf(t, reply, raw).Code != radius.CodeAccessAccept {
		t.Fatalf("Status-Server: %s", r)
	}
	raw, _ = radius.New(radius.CodeStatusServer, secret).Encode()
	if reply, r := s.handle(ctx, raw, nas); reply != nil || r != ResultNoAuthenticator {
		t.Fatalf("Status-Server without Message-Authenticator: %s", r)
	}

	chap := request(t, secret, func(p *radius.Packet) {
		rfc2865.UserName_SetString(p, "alice")
		rfc2865.CHAPPassword_Set(p, make([]byte, 17))
	})
	reply, _ = s.handle(ctx, chap, nas)
	if p := answerOf(t, reply, chap); p.Code != radius.CodeAccessReject || !strings.Contains(rfc2865.ReplyMessage_GetString(p), "PAP") {
		t.Fatalf("CHAP: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
	}
	// 192.0.2.10 is in both clients' ranges: vpn1 (the /32) answers.
	if _, r := s.handle(ctx, request(t, []byte("net-secret"), papAttrs("alice", "pw")), nas); r != ResultBadAuthenticator {
		t.Fatalf("the /24's secret from the /32's address: %s", r)
	}
	if _, r := s.handle(ctx, request(t, secret, papAttrs("alice", "pw")), netip.MustParseAddrPort("198.51.100.1:1")); r != ResultUnknownClient {
		t.Fatalf("unknown address: %s", r)
	}
}

func TestChunks(t *testing.T) {
	long := strings.Repeat("abcdefghij ", 60) + strings.Repeat("é", 300)
	var joined strings.Builder
	for _, c := range chunks(long, 253) {
		if len(c) > 253 {
			t.Fatalf("chunk of %d bytes: %q", len(c), c)
		}
		if strings.ToValidUTF8(c, "?") != c {
			t.Fatalf("chunk split a UTF-8 sequence: %q", c)
		}
		joined.WriteString(c)
	}
	if strings.ReplaceAll(joined.String(), " ", "") != strings.ReplaceAll(long, " ", "") {
		t.Fatal("chunks lost text")
	}
}

func TestSourceOf(t *testing.T) {
	n := netip.MustParseAddr("::ffff:192.0.2.10")
	for station, want := range map[string]string{
		"":                           "192.0.2.10",
		"203.0.113.7":                "203.0.113.7@192.0.2.10",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64@192.0.2.10",
		"00-11-22-33-44-55":          "00-11-22-33-44-55@192.0.2.10",
		"a b@c":                      "a_b_c@192.0.2.10",
		strings.Repeat("x", 300):     strings.Repeat("x", 64) + "@192.0.2.10",
		"+1 555 0100\x00\nforged@10": "+1_555_0100__forged_10@192.0.2.10",
	} {
		if got := sourceOf(n, station); got != want {
			t.Errorf("sourceOf(%q) = %q, want %q", station, got, want)
		}
	}
}

func TestLooksLikeCode(t *testing.T) {
	for s, want := range map[string]bool{"123456": true, "12345": false, "abcde-fghij": true, "ABCDEFGHIJ": true,
		"abcde-fghi1": false, "pass": false, "1234567": false, "": false} {
		if looksLikeCode(s) != want {
			t.Errorf("looksLikeCode(%q) = %v", s, !want)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3/24": "10.1.2.0/24", "10.1.2.3": "10.1.2.3/32", " 192.0.2.1 ": "192.0.2.1/32",
		"::ffff:10.0.0.0/104": "10.0.0.0/8", "::ffff:10.0.0.1": "10.0.0.1/32", "2001:db8::1": "2001:db8::1/128", "2001:db8::/32": "2001:db8::/32"} {
		if p, err := ParseCIDR(in); err != nil || p.String() != want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "vpn", "10.0.0.0/33", "10.0.0.0/"} {
		if p, err := ParseCIDR(bad); err == nil {
			t.Errorf("ParseCIDR(%q) = %v", bad, p)
		}
	}
}

// blockingSignIn holds every password step until release is closed.
type blockingSignIn struct {
	fakeSignIn
	entered atomic.Int64
	release chan struct{}
}

func (b *blockingSignIn) Login(ctx context.Context, user, pw, ip, trust string) (signin.LoginResult, error) {
	b.entered.Add(1)
	<-b.release
	return b.fakeSignIn.Login(ctx, user, pw, ip, trust)
}

type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) RADIUSRequest(r string) { c.mu.Lock(); c.m[r]++; c.mu.Unlock() }
func (c *counts) get(r string) int       { c.mu.Lock(); defer c.mu.Unlock(); return c.m[r] }

// blockingServer serves RADIUS on loopback for 127.0.0.1 with maxInFlight
// slots over a sign-in service that holds every password step until its
// release closes; it returns the service, the result counts and a socket
// to the server (all closed at cleanup).
func blockingServer(t *testing.T, maxInFlight int) (*blockingSignIn, *counts, net.Conn) {
	t.Helper()
	svc := &blockingSignIn{release: make(chan struct{})}
	cnt := &counts{m: map[string]int{}}
	s := New(svc, fakeClients{{Name: "lo", CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: secret}},
		Config{MaxInFlight: maxInFlight, Counter: cnt})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select { // a test that failed early has not released the held steps
		case <-svc.release:
		default:
			close(svc.release)
		}
		conn.Close()
		s.Close()
	})
	return svc, cnt, conn
}

// TestInFlightLimit: requests past MaxInFlight, sent at once over UDP,
// are dropped as busy without reaching the sign-in service; a datagram
// longer than a RADIUS packet may be is dropped as malformed.
func TestInFlightLimit(t *testing.T) {
	svc, cnt, conn := blockingServer(t, 4)
	const n = 10
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = request(t, secret, papAttrs("alice", "pw"))
	}
	together.Run(n, func(i int) { conn.Write(reqs[i]) })
	conn.Write(make([]byte, 4097))
	waitFor(t, func() bool { return cnt.get(ResultBusy)+int(svc.entered.Load()) == n && cnt.get(ResultMalformed) == 1 })
	close(svc.release)
	if got := svc.entered.Load(); got != 4 {
		t.Fatalf("%d password steps evaluated, want 4", got)
	}
	waitFor(t, func() bool { return cnt.get(ResultChallenge) == 4 })
	if cnt.get(ResultBusy) != n-4 {
		t.Fatalf("busy: %d", cnt.get(ResultBusy))
	}
}

// waitFor polls cond (bounded): the server counts a request once it has
// finished with it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChallengeTableBound(t *testing.T) {
	cs := newChallenges(time.Minute, 2)
	now := time.Now()
	if cs.put(challenge{}, now) == nil || cs.put(challenge{}, now) == nil {
		t.Fatal("room refused")
	}
	if cs.put(challenge{}, now) != nil {
		t.Fatal("a third challenge past the bound")
	}
	if cs.put(challenge{}, now.Add(time.Minute)) == nil || cs.len() != 1 {
		t.Fatalf("expired challenges not swept: %d held", cs.len())
	}
}

// TestJunkTakesNoSlot: with every in-flight slot held by real requests
// being evaluated, a flood of packets with a wrong Message-Authenticator
// (and from unknown sources) is dropped as such before it asks for a slot —
// none of it is counted busy, so junk never crowds out a real request
// (found by attack: 40,000 of a 200,000-packet junk flood took slots).
func TestJunkTakesNoSlot(t *testing.T) {
	svc, cnt, conn := blockingServer(t, 2)
	for range 2 { // both slots held
		conn.Write(request(t, secret, papAttrs("alice", "pw")))
	}
	waitFor(t, func() bool { return svc.entered.Load() == 2 })
	const junk = 100
	bad := make([][]byte, junk)
	for i := range bad {
		bad[i] = request(t, []byte("not the secret"), papAttrs("alice", "pw"))
	}
	together.Run(junk, func(i int) { conn.Write(bad[i]) })
	waitFor(t, func() bool { return cnt.get(ResultBadAuthenticator) == junk })
	close(svc.release)
	waitFor(t, func() bool { return cnt.get(ResultChallenge) == 2 })
	if b := cnt.get(ResultBusy); b != 0 {
		t.Fatalf("%d junk packets took (or waited for) an in-flight slot", b)
	}
}
