package password

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// phcRE is the form of an argon2id PHC string this package accepts.
var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$([A-Za-z0-9+/]*)\$([A-Za-z0-9+/]*)$`)

// FuzzCheck feeds any stored hash to Check: no panic, and a hash it
// accepts is an argon2id PHC string in canonical form whose cost is
// bounded (1..16 passes, 1 KiB..1 GiB, at least one lane: argon2 panics on
// zero passes or lanes, and the memory is allocated), with a salt of at
// least 8 bytes and a key of 16 to 64. The parser is driven with a password
// over MaxLength, which Check refuses before hashing; cheap accepted hashes
// are then checked for real.
func FuzzCheck(f *testing.F) {
	real, err := Hash("correct horse battery")
	if err != nil {
		f.Fatal(err)
	}
	salt := base64.RawStdEncoding.EncodeToString([]byte("saltsaltsalt"))
	key := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for _, h := range []string{
		real,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1xyz$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$$",
		"x$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2i$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=8,t=1,p=1$" + salt + "$" + key,
	} {
		f.Add(h)
	}
	long := strings.Repeat("x", MaxLength+1)
	f.Fuzz(func(t *testing.T, hash string) {
		ok, err := Check(hash, long)
		if err != nil {
			return
		}
		if ok {
			t.Fatalf("Check(%q) accepted a password over MaxLength", hash)
		}
		m := phcRE.FindStringSubmatch(hash)
		if m == nil {
			t.Fatalf("Check accepted %q: not a canonical argon2id PHC string", hash)
		}
		num := func(s string) uint64 {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || strconv.FormatUint(n, 10) != s {
				t.Fatalf("Check accepted %q: parameter %q not canonical", hash, s)
			}
			return n
		}
		mem, passes, lanes := num(m[1]), num(m[2]), num(m[3])
		if mem < 1 || mem > 1<<20 || passes < 1 || passes > 16 || lanes < 1 || lanes > 255 {
			t.Fatalf("Check accepted %q: cost m=%d t=%d p=%d out of bounds", hash, mem, passes, lanes)
		}
		s, errS := base64.RawStdEncoding.DecodeString(m[4])
		k, errK := base64.RawStdEncoding.DecodeString(m[5])
		if errS != nil || errK != nil || len(s) < 8 || len(k) < 16 || len(k) > 64 ||
			base64.RawStdEncoding.EncodeToString(s) != m[4] || base64.RawStdEncoding.EncodeToString(k) != m[5] {
			t.Fatalf("Check accepted %q: salt of %d bytes, key of %d", hash, len(s), len(k))
		}
		if mem*passes <= 256 { // cheap: hash for real
			if ok, err := Check(hash, "correct horse battery"); err != nil || ok && hash != real {
				t.Fatalf("Check(%q) for real: %v %v", hash, ok, err)
			}
		}
	})
}
