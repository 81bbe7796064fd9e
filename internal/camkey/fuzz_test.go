package camkey

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// fuzzKey is a fixed identity: the fuzz targets need the same key in every
// worker.
func fuzzKey() PrivateKey {
	var k PrivateKey
	k.Sign = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	copy(k.Box[:], bytes.Repeat([]byte{9}, 32))
	return k
}

// FuzzParsePublicKey: a registered public identity either fails or is the
// one canonical string of its key (String gives it back, spaces trimmed):
// one key, one spelling.
func FuzzParsePublicKey(f *testing.F) {
	pub := fuzzKey().Public().String()
	for _, s := range []string{pub, " " + pub + "\n", pub[:len(pub)-1] + "B", pub[:len(pub)-1], "cam1:", "cam2:" + pub[5:], pub + "=", strings.Replace(pub, "-", "+", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if len(p.Sign) != ed25519.PublicKeySize {
			t.Fatalf("ParsePublicKey(%q): signing key of %d bytes", s, len(p.Sign))
		}
		if p.String() != strings.TrimSpace(s) {
			t.Fatalf("ParsePublicKey(%q) accepted another spelling of %q", s, p.String())
		}
	})
}

// FuzzParsePrivate: the camera's stored private key either fails or is the
// canonical encoding MarshalPrivate writes for it.
func FuzzParsePrivate(f *testing.F) {
	priv := fuzzKey().MarshalPrivate()
	for _, s := range []string{priv, priv[:len(priv)-1] + "B", priv[:len(priv)-1], "", priv + "A", " " + priv} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePrivate(s)
		if err != nil {
			return
		}
		if got := k.MarshalPrivate(); got != s {
			t.Fatalf("ParsePrivate(%q) accepted another spelling of %q", s, got)
		}
	})
}

// FuzzVerifyToken: a camera's MQTT password (attacker-controlled at the
// broker) verifies only when it is exactly the token the camera's key makes
// for that serial at the time it names, within TokenSkew: no other spelling
// of a valid token, no forgery.
func FuzzVerifyToken(f *testing.F) {
	k := fuzzKey()
	pub := k.Public()
	now := time.Unix(1_800_000_000, 0)
	good := k.Token("CAM-1", now)
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, k.Token("CAM-1", now.Add(-TokenSkew)), k.Token("CAM-1", now.Add(TokenSkew+time.Second)),
		"v1.+" + parts[1] + "." + parts[2], "v1.0" + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + "B",
		"v2." + parts[1] + "." + parts[2], "v1..", "v1.9223372036854775807." + parts[2], "v1.-9223372036854775808." + parts[2],
	} {
		f.Add("CAM-1", s)
	}
	f.Add("CAM-2", good)
	f.Fuzz(func(t *testing.T, serial, token string) {
		if err := pub.VerifyToken(serial, token, now); err != nil {
			return
		}
		ts := strings.Split(token, ".")[1]
		var at time.Time
		for d := -TokenSkew; d <= TokenSkew; d += time.Second {
			if c := now.Add(d); strings.Contains(k.Token(serial, c), "."+ts+".") {
				at = c
				break
			}
		}
		if at.IsZero() || k.Token(serial, at) != token {
			t.Fatalf("VerifyToken(%q, %q) accepted a token the key did not make (or another spelling of it)", serial, token)
		}
	})
}
