package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseBase32Seed: a --test-seed value either fails or gives a valid
// seed with default parameters whose base32 form parses to the same seed.
func FuzzParseBase32Seed(f *testing.F) {
	for _, s := range []string{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "gezdgnbvgy3tqojq", "GEZDGNBVGY3TQOJQ====", "GEZD GNBV", "", "11111111", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seed, err := ParseBase32Seed(s)
		if err != nil {
			return
		}
		if err := seed.Validate(); err != nil {
			t.Fatalf("ParseBase32Seed(%q) accepted an invalid seed: %v", s, err)
		}
		if seed.Algorithm != "SHA1" || seed.Digits != 6 || seed.Period != 30 || seed.Version != 0 {
			t.Fatalf("ParseBase32Seed(%q) parameters %+v", s, seed)
		}
		again, err := ParseBase32Seed(seed.Base32())
		if err != nil || !bytes.Equal(again.Secret, seed.Secret) {
			t.Fatalf("round trip of %q via %q: %v", s, seed.Base32(), err)
		}
	})
}

// FuzzParseState feeds arbitrary bytes as each of a camera's state files
// (identity.json, seed.json, server-key.json; the seed and pin files present
// or not) to the parser OpenState uses at the camera's start: no panic, and
// a state that parses is usable: a valid serial and model, a seed that is
// absent or valid, a pin that is absent or not empty; and what it holds,
// written back in the files' format, parses the same.
func FuzzParseState(f *testing.F) {
	dir := f.TempDir()
	st, err := InitState(dir, "FUZZ-1", Body4)
	if err != nil {
		f.Fatal(err)
	}
	s := rfcSeed
	s.Version = 3
	if err := st.StoreSeed(s); err != nil {
		f.Fatal(err)
	}
	if err := st.PinServerKey([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		f.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	identity, seed, pin := read(identityName), read(seedName), read(pinName)
	f.Add(identity, seed, true, pin, true)
	f.Add(identity, []byte(nil), false, []byte(nil), false)
	f.Add(identity, []byte(`{"version":4}`), true, []byte(nil), false)
	f.Add(identity, []byte(`{"version":1,"seed":{"secret":"","digits":7}}`), true, pin, true)
	f.Add(identity, []byte(`{"version":1,"seed":null}`), true, []byte(`{"serverKey":""}`), true)
	f.Add(identity, []byte(``), true, pin, true)
	f.Add(bytes.Replace(identity, []byte("FUZZ-1"), []byte("../x/#"), 1), seed, true, pin, true)
	f.Add(bytes.Replace(identity, []byte("body4"), []byte("body9"), 1), seed, true, pin, true)
	f.Add([]byte(`{"serial":"A","model":"body4","privateKey":"AAAA"}`), seed, true, pin, true)
	f.Add([]byte(`null`), []byte(`null`), true, []byte(`null`), true)
	f.Fuzz(func(t *testing.T, identity, seed []byte, hasSeed bool, pin []byte, hasPin bool) {
		files := stateFiles{identity: identity, seed: seed, hasSeed: hasSeed, pin: pin, hasPin: hasPin}
		st, err := parseState("/state", files)
		if err != nil {
			return
		}
		id := st.Identity()
		if err := ValidateSerial(id.Serial); err != nil {
			t.Fatalf("parsed a camera with serial %q: %v", id.Serial, err)
		}
		if _, err := ParseModel(string(id.Model)); err != nil {
			t.Fatalf("parsed a camera with model %q", id.Model)
		}
		got, err := st.Seed()
		switch {
		case errors.Is(err, ErrNoSeed):
		case err != nil:
			t.Fatalf("seed: %v", err)
		default:
			if err := got.Validate(); err != nil {
				t.Fatalf("parsed a camera with an invalid seed %+v: %v", got, err)
			}
		}
		if hasPin && len(st.PinnedServerKey()) == 0 {
			t.Fatal("parsed an empty pin")
		}
		// Written back as the camera writes its files, it parses the same.
		var again stateFiles
		again.identity, _ = json.Marshal(identityFile{Serial: id.Serial, Model: id.Model, PrivateKey: id.Key.MarshalPrivate()})
		if hasSeed {
			again.hasSeed = true
			again.seed, _ = json.Marshal(seedFile{Version: st.Version(), Seed: st.seed})
		}
		if hasPin {
			again.hasPin = true
			again.pin, _ = json.Marshal(struct {
				ServerKey []byte `json:"serverKey"`
			}{st.PinnedServerKey()})
		}
		re, err := parseState("/state", again)
		if err != nil {
			t.Fatalf("written back, it does not parse: %v", err)
		}
		if re.Identity().Public() != id.Public() || re.Version() != st.Version() ||
			!bytes.Equal(re.PinnedServerKey(), st.PinnedServerKey()) || !reflect.DeepEqual(re.seed, st.seed) {
			t.Fatalf("written back, it parses differently")
		}
	})
}
