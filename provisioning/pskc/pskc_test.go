package pskc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// rfcPSK is the pre-shared key of RFC 6030's Figure 6.
var rfcPSK = mustHex("12345678901234567890123456789012")

// rfcSecret is the OTP secret of RFC 6030's Figures 3, 6, 7 and 10
// ("12345678901234567890", RFC 4226's test key).
var rfcSecret = mustHex("3132333435363738393031323334353637383930")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRFCFigures reads RFC 6030's own examples and finds the secrets the
// RFC states, with the device and key data the figures carry.
func TestRFCFigures(t *testing.T) {
	zero := uint64(0)
	tests := []struct {
		file       string
		opt        ReadOptions
		protection Protection
		keyName    string
		want       []Key
	}{
		{"rfc6030-figure2.pskcxml", ReadOptions{AllowPlaintext: true}, Plaintext, "",
			[]Key{{Package: 1, ID: "12345678", Algorithm: AlgorithmHOTP, Issuer: "Issuer-A", Secret: []byte("1234")}}},
		{"rfc6030-figure3.pskcxml", ReadOptions{AllowPlaintext: true}, Plaintext, "",
			[]Key{{Package: 1, Manufacturer: "Manufacturer", SerialNo: "987654321", ID: "12345678", Algorithm: AlgorithmHOTP,
				Issuer: "Issuer", Digits: 8, Encoding: "DECIMAL", Secret: rfcSecret, Counter: &zero}}},
		{"rfc6030-figure6.pskcxml", ReadOptions{Key: rfcPSK}, PreSharedKey, "Pre-shared-key",
			[]Key{{Package: 1, Manufacturer: "Manufacturer", SerialNo: "987654321", ID: "12345678", Algorithm: AlgorithmHOTP,
				Issuer: "Issuer", Digits: 8, Encoding: "DECIMAL", Secret: rfcSecret, Counter: &zero}}},
		{"rfc6030-figure7.pskcxml", ReadOptions{Password: "qwerty"}, Password, "My Password 1",
			[]Key{{Package: 1, Manufacturer: "TokenVendorAcme", SerialNo: "987654321", ID: "123456", Algorithm: AlgorithmHOTP,
				Issuer: "Example-Issuer", Digits: 8, Encoding: "DECIMAL", Secret: rfcSecret}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Parse(readFile(t, tt.file), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if c.Protection != tt.protection || c.KeyName != tt.keyName {
				t.Errorf("protection %s key name %q, want %s %q", c.Protection, c.KeyName, tt.protection, tt.keyName)
			}
			if got, want := fmt.Sprintf("%+v", deref(c.Keys)), fmt.Sprintf("%+v", deref(tt.want)); got != want {
				t.Errorf("keys\n got %s\nwant %s", got, want)
			}
		})
	}
}

// deref shows a key's optional numbers by value.
func deref(keys []Key) []string {
	var out []string
	for _, k := range keys {
		s := fmt.Sprintf("%d %s/%s/%s id=%s alg=%s issuer=%s suite=%s digits=%d %s secret=%x", k.Package, k.Manufacturer, k.SerialNo, k.Model,
			k.ID, k.Algorithm, k.Issuer, k.Suite, k.Digits, k.Encoding, k.Secret)
		if k.Counter != nil {
			s += fmt.Sprintf(" counter=%d", *k.Counter)
		}
		for _, f := range []struct {
			n string
			v *int64
		}{{"time", k.Time}, {"interval", k.TimeInterval}, {"drift", k.TimeDrift}} {
			if f.v != nil {
				s += fmt.Sprintf(" %s=%d", f.n, *f.v)
			}
		}
		out = append(out, s)
	}
	return out
}

// TestRFCFigure10 reads the bulk example: four packages in order, two
// sharing a serial (the importer, not the parser, refuses that).
func TestRFCFigure10(t *testing.T) {
	c, err := Parse(readFile(t, "rfc6030-figure10.pskcxml"), ReadOptions{AllowPlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range c.Keys {
		if !bytes.Equal(k.Secret, rfcSecret) {
			t.Errorf("package %d secret %x", k.Package, k.Secret)
		}
		got = append(got, fmt.Sprintf("%d:%s:%s", k.Package, k.SerialNo, k.ID))
	}
	if want := "1:654321:1 2:123456:2 3:9999999:3 4:9999999:4"; strings.Join(got, " ") != want {
		t.Errorf("keys %v, want %s", got, want)
	}
}

// TestRefusals: each way a document can be wrong or unreadable fails
// with an error that says which, naming the key package when it is about
// one key.
func TestRefusals(t *testing.T) {
	fig6 := string(readFile(t, "rfc6030-figure6.pskcxml"))
	fig7 := string(readFile(t, "rfc6030-figure7.pskcxml"))
	otherKey := mustHex("00000000000000000000000000000000")
	tests := []struct {
		name    string
		doc     string
		opt     ReadOptions
		is      error
		want    string
		keyErr  bool
		pkgName string
	}{
		{"plaintext refused", string(readFile(t, "rfc6030-figure3.pskcxml")), ReadOptions{}, ErrPlaintext, "", true, `key package 1 (serial "987654321", key "12345678")`},
		{"psk missing", fig6, ReadOptions{}, ErrNeedKey, "", true, "key package 1"},
		{"password missing", fig7, ReadOptions{}, ErrNeedPassword, "", true, "key package 1"},
		{"wrong psk", fig6, ReadOptions{Key: otherKey}, nil, "MACKey does not decrypt", true, "key package 1"},
		{"wrong password", fig7, ReadOptions{Password: "azerty"}, nil, "MACKey does not decrypt", true, "key package 1"},
		{"psk of wrong size", fig6, ReadOptions{Key: rfcPSK[:8]}, nil, "aes128-cbc needs a 16-byte key", true, ""},
		{"altered ciphertext", strings.Replace(fig6, "AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ", 1), ReadOptions{Key: rfcPSK}, ErrMAC, "", true, ""},
		{"altered MAC", strings.Replace(fig6, "Su+NvtQf", "Su+NvtQg", 1), ReadOptions{Key: rfcPSK}, ErrMAC, "", true, ""},
		{"no ValueMAC", strings.Replace(fig6, "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>", "", 1), ReadOptions{Key: rfcPSK}, nil, "without ValueMAC", true, ""},
		{"no MACMethod", regexCut(fig6, "<MACMethod", "</MACMethod>"), ReadOptions{Key: rfcPSK}, nil, "no MACMethod", true, ""},
		{"unknown MAC", strings.Replace(fig6, "xmldsig#hmac-sha1", "xmldsig#hmac-md5", 1), ReadOptions{Key: rfcPSK}, nil, "MAC algorithm", true, ""},
		{"unknown cipher", strings.Replace(fig6, "xmlenc#aes128-cbc\"/>\n                        <xenc:CipherData>", "xmlenc#tripledes-cbc\"/>\n                        <xenc:CipherData>", 1), ReadOptions{Key: rfcPSK}, nil, "tripledes-cbc", true, ""},
		{"iterations past the bound", strings.Replace(fig7, "<IterationCount>1000<", "<IterationCount>5000001<", 1), ReadOptions{Password: "qwerty"}, nil, "IterationCount must be 1 to 5000000", false, ""},
		{"unknown derivation", strings.Replace(fig7, "pkcs-5v2-0#pbkdf2", "pkcs-5v2-0#scrypt", 1), ReadOptions{Password: "qwerty"}, nil, "key derivation", false, ""},
		{"not xml", "hello", ReadOptions{}, nil, "not a PSKC document", false, ""},
		{"other root", `<KeyContainer Version="1.0" xmlns="urn:other"/>`, ReadOptions{}, nil, "root element", false, ""},
		{"other version", strings.Replace(fig6, `Version="1.0"`, `Version="2.0"`, 1), ReadOptions{Key: rfcPSK}, nil, "version", false, ""},
		{"no key package", `<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"></KeyContainer>`, ReadOptions{}, nil, "no key package", false, ""},
		{"two roots", fig6 + "<KeyContainer/>", ReadOptions{Key: rfcPSK}, nil, "after the KeyContainer", false, ""},
		{"entity", `<!DOCTYPE x [<!ENTITY a "aaaa">]><KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage><Key><Data><Secret><PlainValue>&a;</PlainValue></Secret></Data></Key></KeyPackage></KeyContainer>`, ReadOptions{AllowPlaintext: true}, nil, "entity", false, ""},
		{"no secret", `<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage><DeviceInfo><SerialNo>S1</SerialNo></DeviceInfo><Key Id="k"/></KeyPackage></KeyContainer>`, ReadOptions{}, nil, `key package 1 (serial "S1", key "k"): no Data/Secret`, true, ""},
		{"bad counter", strings.Replace(fig6, "<PlainValue>0</PlainValue>", "<PlainValue>zero</PlainValue>", 1), ReadOptions{Key: rfcPSK}, nil, "Counter: PlainValue \"zero\" is not an integer", true, ""},
		{"bad digits", strings.Replace(fig6, `Length="8"`, `Length="99"`, 1), ReadOptions{Key: rfcPSK}, nil, "ResponseFormat Length", true, ""},
		{"too large", strings.Repeat(" ", MaxDocumentBytes+1), ReadOptions{}, ErrTooLarge, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), tt.opt)
			if err == nil {
				t.Fatalf("parsed: %+v", deref(c.Keys))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.pkgName) {
				t.Errorf("error %q, want it to say %q and %q", err, tt.want, tt.pkgName)
			}
			var ke *KeyError
			if errors.As(err, &ke) != tt.keyErr {
				t.Errorf("error %q: KeyError %v, want %v", err, !tt.keyErr, tt.keyErr)
			}
		})
	}
}

// regexCut removes doc's first span from start to end inclusive.
func regexCut(doc, start, end string) string {
	i := strings.Index(doc, start)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		panic("span not found")
	}
	return doc[:i] + doc[j+len(end):]
}

// keysOf is n TOTP keys with distinct serials and secrets.
func keysOf(n int) []Key {
	var keys []Key
	for i := range n {
		t0, step := int64(0), int64(30)
		secret := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 10)
		keys = append(keys, Key{Manufacturer: "camotp", SerialNo: fmt.Sprintf("CAM-%05d", i), Model: "body4", ID: fmt.Sprintf("CAM-%05d", i),
			Algorithm: AlgorithmTOTP, Issuer: "camotp", Suite: "HMAC-SHA1", Digits: 6, Encoding: "DECIMAL", Secret: secret, Time: &t0, TimeInterval: &step})
	}
	return keys
}

// TestRoundTrip: what Marshal writes, with a pre-shared key of each size
// or a password, Parse reads back to the same keys, and only with that key
// or password; the document holds no secret in the clear.
func TestRoundTrip(t *testing.T) {
	keys := keysOf(3)
	counter := uint64(42)
	drift := int64(-2)
	keys[1].Counter, keys[1].TimeDrift = &counter, &drift
	for _, tt := range []struct {
		name  string
		write WriteOptions
		read  ReadOptions
		wrong ReadOptions
		prot  Protection
	}{
		{"aes128", WriteOptions{Key: rfcPSK}, ReadOptions{Key: rfcPSK}, ReadOptions{Key: make([]byte, 16)}, PreSharedKey},
		{"aes192", WriteOptions{Key: bytes.Repeat([]byte{7}, 24)}, ReadOptions{Key: bytes.Repeat([]byte{7}, 24)}, ReadOptions{Key: make([]byte, 24)}, PreSharedKey},
		{"aes256", WriteOptions{Key: bytes.Repeat([]byte{9}, 32), KeyName: "migration 2026"}, ReadOptions{Key: bytes.Repeat([]byte{9}, 32)}, ReadOptions{Key: make([]byte, 32)}, PreSharedKey},
		{"password", WriteOptions{Password: "correct horse", Iterations: 1000, KeyName: "pw"}, ReadOptions{Password: "correct horse"}, ReadOptions{Password: "wrong horse"}, Password},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Marshal(keys, tt.write)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				for _, enc := range [][]byte{k.Secret, []byte(fmt.Sprintf("%x", k.Secret))} {
					if bytes.Contains(doc, enc) {
						t.Fatalf("document holds secret of %s in the clear", k.SerialNo)
					}
				}
			}
			c, err := Parse(doc, tt.read)
			if err != nil {
				t.Fatalf("%v\n%s", err, doc)
			}
			if c.Protection != tt.prot || c.KeyName != tt.write.KeyName && tt.write.KeyName != "" {
				t.Errorf("protection %s name %q", c.Protection, c.KeyName)
			}
			want := keys
			for i := range want {
				want[i].Package = i + 1
			}
			if got, w := deref(c.Keys), deref(want); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("read back\n got %v\nwant %v", got, w)
			}
			if _, err := Parse(doc, tt.wrong); err == nil {
				t.Error("read with the wrong key or password")
			}
		})
	}
}

// TestMarshalRefuses: never plain text, never past MaxKeys.
func TestMarshalRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys []Key
		opt  WriteOptions
		want string
	}{
		{"no key", keysOf(1), WriteOptions{}, "never written in plain text"},
		{"both", keysOf(1), WriteOptions{Key: rfcPSK, Password: "x"}, "not both"},
		{"key size", keysOf(1), WriteOptions{Key: rfcPSK[:10]}, "16, 24 or 32 bytes"},
		{"too many", keysOf(MaxKeys + 1), WriteOptions{Key: rfcPSK}, "at most 10000"},
		{"empty secret", []Key{{SerialNo: "S1"}}, WriteOptions{Key: rfcPSK}, `key package 1 (serial "S1"): Secret must be`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Marshal(tt.keys, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestKeyLimit: a document of MaxKeys keys is read; one more key, in a
// package of its own or inside the last package, is refused before its
// keys are decrypted — checked by readers released together.
func TestKeyLimit(t *testing.T) {
	doc, err := Marshal(keysOf(MaxKeys), WriteOptions{Key: rfcPSK})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(doc, []byte("  <KeyPackage>"))
	j := bytes.LastIndex(doc, []byte("</KeyPackage>")) + len("</KeyPackage>\n")
	last := doc[i:j]
	morePkg := append(append(append([]byte{}, doc[:j]...), last...), doc[j:]...)
	k := bytes.LastIndex(doc, []byte("    <Key "))
	l := bytes.LastIndex(doc, []byte("</Key>")) + len("</Key>\n")
	moreKey := append(append(append([]byte{}, doc[:l]...), doc[k:l]...), doc[l:]...)
	docs := []struct {
		doc  []byte
		want error
	}{{doc, nil}, {morePkg, ErrTooLarge}, {moreKey, ErrTooLarge}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(docs))
	for n := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := Parse(docs[n].doc, ReadOptions{Key: rfcPSK})
			if err == nil && len(c.Keys) != MaxKeys {
				err = fmt.Errorf("read %d keys", len(c.Keys))
			}
			errs[n] = err
		}()
	}
	close(start)
	wg.Wait()
	for n, err := range errs {
		if want := docs[n].want; !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("reader %d: %v, want %v", n, err, want)
		}
	}
}
