package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
)

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealerFormats pins the at-rest formats: rows sealed by the SQLite
// code before the Sealer existed (these bytes, under an all-zero master
// key) open, the keyed hashes are the same bytes, and every secret opens
// only for the owner it was sealed for. A change here would strand every
// database already written, and break copying rows between backends.
func TestSealerFormats(t *testing.T) {
	k, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSealer(k)
	seed := device.Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30, Version: 3}

	cam := hexBytes(t, "0698fcd767cf5f49ecd2aeed5139a4161b91e39a5c56c2a03516134420298fab8c8d824d0b98ffc6d85eae45168d93cb74419fa19d871eda791fd4f68705d99a44b90ea9ca7e767870206e011cd80bc0e1e35472b13da8c28c04c0b8cc523bdb54d9158474020e8b4369cd0d802090e0db24d99e186a6b31dd3445")
	if got, err := s.OpenCameraSeed("BC4-0001", cam); err != nil || !reflect.DeepEqual(got, seed) {
		t.Errorf("camera seed: %+v %v", got, err)
	}
	if _, err := s.OpenCameraSeed("BC4-0002", cam); err == nil {
		t.Error("a seed sealed for BC4-0001 opened for BC4-0002")
	}
	app := hexBytes(t, "62cf64dc441a4f25faf524ac22ba3a5ad1a3c0dc0c1efbfd171d59745c48a4600435ee31a2372e6e2f3e160c1c82ca19928c54ed81f816698c9e6a855d3ec3b19a7fea4161dc69aaa6fb879154f32d4dcea0534fdb875c3f64d2535f43302d1909c95313b275ee1347a11ce8a051defe5252a12ff580c365724169")
	if got, err := s.OpenAppSeed("alice", app); err != nil || !reflect.DeepEqual(got, seed) {
		t.Errorf("app seed: %+v %v", got, err)
	}
	if _, err := s.OpenAppSeed("bob", app); err == nil {
		t.Error("alice's app seed opened for bob")
	}
	if _, err := s.OpenCameraSeed("alice", app); err == nil {
		t.Error("an app seed opened as a camera seed")
	}
	rad := hexBytes(t, "92ada60ef1c3632c0b628d5d58f23d8b4a96160f95efbeceb4cbd60be57e73691294")
	if got, err := s.OpenRadiusSecret("vpn1", rad); err != nil || string(got) != "shared" {
		t.Errorf("radius secret: %q %v", got, err)
	}
	if _, err := s.OpenRadiusSecret("vpn2", rad); err == nil {
		t.Error("vpn1's secret opened for vpn2")
	}
	oidc := hexBytes(t, "846230ded01731dda5f21bc61ad6d427f3cc41089cf797d4c6884e210985f2")
	if got, err := s.OpenOIDCKey("k1", oidc); err != nil || string(got) != "der" {
		t.Errorf("oidc key: %q %v", got, err)
	}
	if _, err := s.OpenOIDCKey("k2", oidc); err == nil {
		t.Error("key k1 opened as k2")
	}
	if got := hex.EncodeToString(s.BackupCodeMAC("alice", "ABCD2345EFGH")); got != "a8d807421a82141f3dafc24ed99ca7a39fcce0608b76c2dad23cdacb113d7573" {
		t.Errorf("backup code MAC %s", got)
	}
	if got := hex.EncodeToString(s.SentCodeMAC("alice", "login", "123456")); got != "297754bd4e1dc562627cc5de452d7873bc43c9bda88a1ceee36a0ffe422a0c51" {
		t.Errorf("sent code MAC %s", got)
	}
	sum := sha256.Sum256([]byte("tok"))
	if !bytes.Equal(TokenHash("tok"), sum[:]) || !bytes.Equal(OIDCCodeHash("tok"), sum[:]) {
		t.Error("token and code hashes are plain SHA-256")
	}

	// Round trips through the Sealer itself.
	sealed, err := s.SealCameraSeed("BC4-0009", seed)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, seed.Secret) {
		t.Fatal("seed stored in plaintext")
	}
	if got, err := s.OpenCameraSeed("BC4-0009", sealed); err != nil || !reflect.DeepEqual(got, seed) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	other, _ := masterkey.New(bytes.Repeat([]byte{1}, 32))
	if _, err := NewSealer(other).OpenCameraSeed("BC4-0009", sealed); err == nil {
		t.Error("opened with another master key")
	}
	a, _ := NewToken()
	b, _ := NewToken()
	if len(a) != 43 || a == b {
		t.Errorf("tokens %q %q", a, b)
	}
}
