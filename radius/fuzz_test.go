package radius

import (
	"context"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// FuzzHandle feeds raw datagrams through the request path (framing,
// client lookup, Message-Authenticator, layeh's parser, PAP decryption,
// the flows). With resign the Message-Authenticator is recomputed first,
// so mutated packets get past the secret check and reach the parser and
// the flows. Whatever comes in: no panic, and an answer only to a packet
// that proved the secret, correctly signed.
func FuzzHandle(f *testing.F) {
	seed := func(attrs func(*radius.Packet)) {
		f.Add(request(f, secret, attrs), false)
		f.Add(request(f, nil, attrs), true)
	}
	seed(papAttrs("alice", "pw"))
	seed(papAttrs("alice", "pw,123456"))
	seed(papAttrs("alice", "123456", func(p *radius.Packet) { rfc2865.State_Set(p, make([]byte, 16)) }))
	seed(papAttrs("alice", "pw", func(p *radius.Packet) {
		rfc2865.ProxyState_Add(p, []byte("x"))
		rfc2865.CallingStationID_SetString(p, "2001:db8::1")
	}))
	seed(func(p *radius.Packet) { rfc2865.CHAPPassword_Set(p, make([]byte, 17)) })
	status := radius.New(radius.CodeStatusServer, secret)
	status.Add(typeMessageAuthenticator, make(radius.Attribute, 16))
	raw, _ := status.Encode()
	f.Add(raw, true)
	f.Add([]byte{1, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, raw []byte, resign bool) {
		s, _, _ := newTestServer(t, Config{Separator: ","})
		signed := false
		if off, err := findMessageAuthenticator(raw); err == nil && off != 0 {
			if resign {
				copy(raw[off:off+16], messageAuthenticator(raw, off, raw[4:20], secret))
			}
			signed = checkRequest(raw, off, secret)
		}
		in := append([]byte(nil), raw...)
		reply, result := s.handle(context.Background(), raw, nas)
		if string(in) != string(raw) {
			t.Fatal("handle changed the request buffer")
		}
		if reply == nil {
			return
		}
		if !signed || (raw[0] != byte(radius.CodeAccessRequest) && raw[0] != byte(radius.CodeStatusServer)) {
			t.Fatalf("answered (%s) a packet that did not prove the secret: % x", result, raw)
		}
		if len(reply) > 4096 {
			t.Fatalf("answer of %d bytes", len(reply))
		}
		answerOf(t, reply, raw)
	})
}
