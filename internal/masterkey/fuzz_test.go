package masterkey

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// genuineSeals are what Seal made under the fuzz key (32 bytes of 3) with
// associated data "seed:CAM-1", hex → plaintext. They are constants: Seal
// draws a random nonce, and every fuzz worker must know the same seals.
var genuineSeals = map[string]string{
	"10fd125675d6984c5ca8e612d9c78094c593e60b5b33f7f6075820eb":                                                                                                                                 "",
	"afa09bd39effbe77a0135547fc350677c4a3ffdf44e8f8616290ba296d84d068259a23809dcc1268ee9a88b989531e7b":                                                                                         "12345678901234567890",
	"b18928326cfaa65c55b8b7f2034b827e8e79485a90378052c277d3e31b0db36caba01aba5f2279eb58014c968eb1b3b7d8a479ed41850af4f449d7f767134d8df1ad5c746c2dbdea86ab43b6c0bae0e7161aba8551516b9d51b8a5de": strings.Repeat("s", 64),
}

// FuzzOpen feeds any sealed value (a column of the database: whoever
// writes to the database writes it) to Open: no panic, and it opens only
// what Seal made under this key with the same associated data, never a
// changed byte. The seeds are genuine seals, so the fuzzer mutates them.
func FuzzOpen(f *testing.F) {
	k, err := New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		f.Fatal(err)
	}
	for h, want := range genuineSeals {
		sealed, _ := hex.DecodeString(h)
		if pt, err := k.Open(sealed, []byte("seed:CAM-1")); err != nil || string(pt) != want {
			f.Fatalf("genuine seal %s: %q %v", h, pt, err)
		}
		f.Add(sealed, []byte("seed:CAM-1"))
		f.Add(sealed, []byte("seed:CAM-2"))
		f.Add(sealed[:len(sealed)-1], []byte("seed:CAM-1"))
	}
	f.Add([]byte{}, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := k.Open(sealed, ad)
		if err != nil {
			return
		}
		want, ok := genuineSeals[hex.EncodeToString(sealed)]
		if !ok || string(ad) != "seed:CAM-1" || string(pt) != want {
			t.Fatalf("Open accepted % x with ad %q: %q", sealed, ad, pt)
		}
	})
}

// FuzzLoadEnv: a CAMOTP_MASTER_KEY value either fails or is the standard
// base64 of exactly 32 bytes (spaces around it forgiven), and the key it
// gives opens what the same bytes' key sealed.
func FuzzLoadEnv(f *testing.F) {
	raw := bytes.Repeat([]byte{5}, 32)
	good := base64.StdEncoding.EncodeToString(raw)
	for _, s := range []string{good, " " + good + "\n", good[:len(good)-1], base64.RawStdEncoding.EncodeToString(raw), base64.URLEncoding.EncodeToString(raw), "AAAA", "!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, env string) {
		if env == "" {
			return // empty means: use the file
		}
		k, err := Load("/nonexistent/master.key", env)
		if err != nil {
			return
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env))
		if err != nil || len(b) != 32 {
			t.Fatalf("Load accepted %q: %d bytes, %v", env, len(b), err)
		}
		ref, _ := New(b)
		sealed, err := ref.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k.Open(sealed, nil); err != nil || string(pt) != "x" {
			t.Fatalf("key from %q is not the key of its bytes: %v", env, err)
		}
	})
}
