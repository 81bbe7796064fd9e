package radius

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/signin"
)

// handle answers one datagram from src: the encoded reply (nil: none) and
// the result it is counted under. Nothing in raw is trusted before the
// client's secret has checked it.
func (s *Server) handle(ctx context.Context, raw []byte, src netip.AddrPort) ([]byte, string) {
	sc, result := s.screen(ctx, raw, src)
	if result != "" {
		return nil, result
	}
	return s.answer(ctx, raw, src, sc)
}

// screened is a request that passed the cheap checks.
type screened struct {
	client model.RadiusClient
	code   radius.Code
	length int
}

// screen runs the checks that cost no more than an HMAC — well formed, a
// known client, a supported code, a valid Message-Authenticator — and
// returns the result that drops the request, or "" when it passed. The
// read loop runs it before a request takes one of the in-flight slots, so
// junk cannot crowd out real requests.
func (s *Server) screen(ctx context.Context, raw []byte, src netip.AddrPort) (screened, string) {
	maOff, err := findMessageAuthenticator(raw)
	if err != nil {
		return screened{}, ResultMalformed
	}
	length, _ := packetLength(raw)
	client, ok, err := s.client(ctx, src.Addr())
	if err != nil {
		s.cfg.Log.Error("radius: read clients", "err", err)
		return screened{}, ResultError
	}
	if !ok {
		s.cfg.Log.Debug("radius: request from an unknown client dropped", "from", src.String())
		return screened{}, ResultUnknownClient
	}
	code := radius.Code(raw[0])
	if code != radius.CodeAccessRequest && code != radius.CodeStatusServer {
		return screened{}, ResultUnsupported
	}
	switch {
	case maOff != 0:
		if !checkRequest(raw, maOff, client.Secret) {
			s.cfg.Log.Debug("radius: bad Message-Authenticator (wrong secret?) dropped", "client", client.Name, "from", src.String())
			return screened{}, ResultBadAuthenticator
		}
	case code == radius.CodeStatusServer || !s.cfg.AllowLegacy:
		s.cfg.Log.Debug("radius: request without Message-Authenticator dropped", "client", client.Name, "from", src.String())
		return screened{}, ResultNoAuthenticator
	}
	return screened{client: client, code: code, length: length}, ""
}

// answer evaluates a screened request and returns the reply (nil: none).
func (s *Server) answer(ctx context.Context, raw []byte, src netip.AddrPort, sc screened) ([]byte, string) {
	client, code, length := sc.client, sc.code, sc.length
	// A retransmission gets the first copy's answer, never a second
	// evaluation.
	// The key is the whole packet, not only its Identifier and
	// Authenticator: a retransmission is byte for byte the same.
	sum := sha256.Sum256(raw[:length])
	key := src.String() + "\x00" + string(sum[:])
	cached, first := s.replies.begin(key, s.cfg.Now())
	if !first {
		return cached, ResultDuplicate
	}
	req, err := radius.Parse(raw, client.Secret)
	if err != nil {
		s.replies.finish(key, nil)
		return nil, ResultMalformed
	}
	var out answer
	if code == radius.CodeStatusServer {
		out = answer{code: radius.CodeAccessAccept, result: ResultStatus}
	} else {
		out = s.access(ctx, req, client, src)
	}
	if out.code == 0 {
		s.replies.finish(key, nil)
		return nil, out.result
	}
	reply, err := s.encode(req, out)
	if err != nil {
		s.cfg.Log.Error("radius: encode answer", "client", client.Name, "err", err)
		s.replies.finish(key, nil)
		return nil, ResultError
	}
	s.replies.finish(key, reply)
	return reply, out.result
}

// answer is what a request gets: code 0 is no answer.
type answer struct {
	code    radius.Code
	result  string
	message string // Reply-Message, split as needed
	state   []byte
}

func reject(msg string) answer {
	return answer{code: radius.CodeAccessReject, result: ResultReject, message: msg}
}

var accept = answer{code: radius.CodeAccessAccept, result: ResultAccept}

// encode builds the response to req: the Message-Authenticator first (as
// BlastRADIUS advice asks), Reply-Message in chunks of at most 253 bytes,
// State, and every Proxy-State of the request in order (RFC 2865 §5.33).
func (s *Server) encode(req *radius.Packet, a answer) ([]byte, error) {
	resp := req.Response(a.code)
	resp.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	for _, m := range chunks(a.message, 253) {
		resp.Add(rfc2865.ReplyMessage_Type, radius.Attribute(m))
	}
	if a.state != nil {
		resp.Add(rfc2865.State_Type, radius.Attribute(a.state))
	}
	for _, avp := range req.Attributes {
		if avp.Type == rfc2865.ProxyState_Type {
			resp.Add(avp.Type, avp.Attribute)
		}
	}
	b, err := resp.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode %v: %w", a.code, err)
	}
	signResponse(b, 22, req.Authenticator, req.Secret)
	return b, nil
}

// chunks splits msg into pieces of at most n bytes, at spaces where it can
// and never inside a UTF-8 sequence.
func chunks(msg string, n int) []string {
	var out []string
	for len(msg) > n {
		cut := strings.LastIndexByte(msg[:n+1], ' ')
		if cut <= 0 {
			cut = n
			for cut > 0 && !utf8.RuneStart(msg[cut]) {
				cut--
			}
		}
		out = append(out, msg[:cut])
		msg = strings.TrimLeft(msg[cut:], " ")
	}
	if msg != "" {
		out = append(out, msg)
	}
	return out
}

// access runs an Access-Request: the password step, or the answer to a
// challenge when it carries a State.
func (s *Server) access(ctx context.Context, req *radius.Packet, client model.RadiusClient, src netip.AddrPort) answer {
	user := rfc2865.UserName_GetString(req)
	pw, err := rfc2865.UserPassword_LookupString(req)
	if err != nil || user == "" {
		return reject("camotp accepts PAP only: send User-Name and User-Password")
	}
	source := sourceOf(src.Addr(), rfc2865.CallingStationID_GetString(req))
	if state := rfc2865.State_Get(req); state != nil {
		ch, ok := s.challenges.take(state, client.Name, user, s.cfg.Now())
		if !ok {
			return reject(signin.ErrBadToken.Error())
		}
		code := strings.TrimSpace(pw)
		method := ch.method
		if ch.backup && !isOTP(code) {
			method = signin.MethodBackup
		}
		return s.verify(ctx, ch.pending, method, code, source)
	}
	code := ""
	if sep := s.cfg.Separator; sep != "" {
		if i := strings.LastIndex(pw, sep); i > 0 && looksLikeCode(pw[i+len(sep):]) {
			pw, code = pw[:i], pw[i+len(sep):]
		}
	}
	res, err := s.svc.Login(ctx, user, pw, source, "")
	if err != nil {
		return s.refused(err, client)
	}
	if res.Session != "" { // no second factor needed for this user
		return accept
	}
	if res.Method == signin.MethodSetup {
		return reject(signin.ErrSetupRequired.Error() + " on the camotp sign-in page, then try again")
	}
	method := typedMethod(res)
	backup := slices.Contains(res.Methods.Available, signin.MethodBackup)
	if code != "" {
		if backup && !isOTP(code) {
			method = signin.MethodBackup
		}
		return s.verify(ctx, res.Pending, method, code, source)
	}
	prompt, err := s.prompt(ctx, res, method, backup, source)
	if err != nil {
		return s.refused(err, client)
	}
	state := s.challenges.put(challenge{pending: res.Pending, user: user, client: client.Name, method: method, backup: backup}, s.cfg.Now())
	if state == nil {
		s.cfg.Log.Warn("radius: too many open challenges; request dropped", "client", client.Name)
		return answer{result: ResultBusy}
	}
	return answer{code: radius.CodeAccessChallenge, result: ResultChallenge, message: prompt, state: state}
}

// verify checks code for a pending sign-in.
func (s *Server) verify(ctx context.Context, pending, method, code, source string) answer {
	if err := s.svc.VerifyOnly(ctx, pending, method, code, source); err != nil {
		return s.refused(err, model.RadiusClient{})
	}
	return accept
}

// refused maps a sign-in error to an Access-Reject whose Reply-Message is
// what the web page would say; a server-side failure gets no answer, so
// the NAS retransmits or fails over.
func (s *Server) refused(err error, client model.RadiusClient) answer {
	var blocked *signin.BlockedError
	var bad *signin.CodeError
	switch {
	case errors.As(err, &blocked), errors.As(err, &bad),
		errors.Is(err, signin.ErrBadCredentials), errors.Is(err, signin.ErrBadToken),
		errors.Is(err, signin.ErrNoMethod), errors.Is(err, signin.ErrNotEnabled):
		return reject(err.Error())
	case errors.Is(err, signin.ErrSetupRequired):
		return reject(signin.ErrSetupRequired.Error() + " on the camotp sign-in page, then try again")
	}
	s.cfg.Log.Error("radius: sign-in failed", "client", client.Name, "err", err)
	return answer{result: ResultError}
}

// typedMethod is the method a RADIUS user types a code for: the one the
// challenge opens with when it is the body camera or the app, else the
// first of those the user has; else the default (a sent code or backup).
func typedMethod(res signin.LoginResult) string {
	if res.Method == signin.MethodBodycam || res.Method == signin.MethodApp {
		return res.Method
	}
	for _, m := range res.Methods.Available {
		if m == signin.MethodBodycam || m == signin.MethodApp {
			return m
		}
	}
	return res.Method
}

// prompt is the challenge's Reply-Message for method; for a method that
// sends a code, the code is sent now.
func (s *Server) prompt(ctx context.Context, res signin.LoginResult, method string, backup bool, source string) (string, error) {
	var p string
	switch method {
	case signin.MethodBodycam:
		m := res.Model
		p = fmt.Sprintf("Enter the code shown on your %s camera. %s: %s", m.DisplayName(), m.DisplayName(), strings.Join(m.HowTo(), " "))
	case signin.MethodApp:
		p = "Enter the 6-digit code from your authenticator app."
	case signin.MethodSMS, signin.MethodCall, signin.MethodEmail:
		to, err := s.svc.SendCode(ctx, res.Pending, method, source)
		if err != nil {
			return "", err
		}
		how := map[string]string{signin.MethodSMS: "texted", signin.MethodCall: "read out in a call", signin.MethodEmail: "emailed"}[method]
		p = fmt.Sprintf("Enter the 6-digit code %s to %s.", how, to)
	case signin.MethodBackup:
		return "Enter one of your backup codes.", nil
	default:
		return "", signin.ErrNoMethod
	}
	if backup {
		p += " Or enter one of your backup codes."
	}
	return p, nil
}

// isOTP reports whether code is six digits: a one-time code, not a backup
// code.
func isOTP(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// looksLikeCode reports whether s, after the separator, can be a code: a
// 6-digit one-time code or a backup code (10 base32 characters, an
// optional dash in the middle).
func looksLikeCode(s string) bool {
	if isOTP(s) {
		return true
	}
	b := strings.ReplaceAll(s, "-", "")
	if len(b) != 10 || len(s) > 11 {
		return false
	}
	for _, c := range strings.ToUpper(b) {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// sourceOf is the source the sign-in service throttles and audits a
// request under: the Calling-Station-Id the NAS reports for the end user
// (for a VPN the user's public address, for dial-up a phone number, for
// Wi-Fi a MAC) at the NAS's address, "station@nas"; the NAS's address
// alone when it sends none. An IPv6 station counts as its /64, as on the
// web. The NAS is authenticated by its secret, so its station is as
// trustworthy as X-Forwarded-For from a trusted proxy.
func sourceOf(nas netip.Addr, station string) string {
	n := nas.Unmap().String()
	station = strings.TrimSpace(station)
	if station == "" {
		return n
	}
	if a, err := netip.ParseAddr(station); err == nil && a.Unmap().Is6() {
		p, _ := a.Prefix(64)
		station = p.String()
	}
	var b strings.Builder
	for _, r := range station {
		if b.Len() >= 64 {
			break
		}
		if r > ' ' && r < 0x7f && r != '@' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "@" + n
}
