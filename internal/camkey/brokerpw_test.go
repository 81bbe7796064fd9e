package camkey

import (
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Unix(1_800_000_000, 0)

func seq(start byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = start + byte(i)
	}
	return k
}

// The derivation matches an independent implementation: Python's
// cryptography package (X25519 + HKDF-SHA256), camera box key 1..32,
// server box key 101..132, serial BC4-0001.
func TestBrokerPasswordKnownAnswer(t *testing.T) {
	const want = "k1.-L4jxSxr_YI87zuwtFDONKtZCcTGgglMP8Vhz3lINcg"
	cam := fuzzKey()
	cam.Box = seq(1)
	srv := seq(101)
	got, err := cam.BrokerPassword("BC4-0001", BoxPublic(srv))
	if err != nil || got != want {
		t.Fatalf("camera side: %q %v; want %q", got, err, want)
	}
	got, err = ServerBrokerPassword(srv, "BC4-0001", cam.Public())
	if err != nil || got != want {
		t.Fatalf("server side: %q %v; want %q", got, err, want)
	}
	if err := cam.Public().VerifyBrokerPassword(srv, "BC4-0001", want); err != nil {
		t.Fatal(err)
	}
	if !IsBrokerPassword(want) || IsBrokerPassword(cam.Token("BC4-0001", fixedNow)) {
		t.Fatal("IsBrokerPassword does not tell a derived password from a signed token")
	}
}

func TestBrokerPasswordBindsSerialAndKeys(t *testing.T) {
	cam := fuzzKey()
	srv := seq(101)
	base, err := cam.BrokerPassword("CAM-X", BoxPublic(srv))
	if err != nil {
		t.Fatal(err)
	}
	other := fuzzKey()
	other.Box = seq(50)
	for name, pw := range map[string]func() (string, error){
		"other serial":     func() (string, error) { return cam.BrokerPassword("CAM-Y", BoxPublic(srv)) },
		"other server key": func() (string, error) { return cam.BrokerPassword("CAM-X", BoxPublic(seq(7))) },
		"other camera key": func() (string, error) { return other.BrokerPassword("CAM-X", BoxPublic(srv)) },
	} {
		got, err := pw()
		if err != nil || got == base {
			t.Errorf("%s: %q %v; want a different password", name, got, err)
		}
	}
	pub := cam.Public()
	for name, pw := range map[string]string{
		"empty":     "",
		"truncated": base[:len(base)-1],
		"token":     cam.Token("CAM-X", fixedNow),
		"longer":    base + "A",
		"no prefix": strings.TrimPrefix(base, BrokerPasswordPrefix),
	} {
		if pub.VerifyBrokerPassword(srv, "CAM-X", pw) == nil {
			t.Errorf("%s password accepted", name)
		}
	}
	if pub.VerifyBrokerPassword(srv, "CAM-Y", base) == nil {
		t.Error("CAM-X's password accepted for CAM-Y")
	}
}

// A low-order server key (all zero) gives an all-zero X25519 output: refused,
// not a password everyone can compute.
func TestBrokerPasswordRefusesLowOrderKey(t *testing.T) {
	if pw, err := fuzzKey().BrokerPassword("CAM-X", [32]byte{}); err == nil {
		t.Fatalf("zero server key gave %q", pw)
	}
	var zero PublicKey
	zero.Sign = fuzzKey().Public().Sign
	if pw, err := ServerBrokerPassword(seq(101), "CAM-X", zero); err == nil {
		t.Fatalf("zero camera key gave %q", pw)
	}
}
