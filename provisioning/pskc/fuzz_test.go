package pskc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input either fails or gives at least one key, each with
// a secret of 1 to MaxSecretBytes bytes and a package number within the
// document; written again (encrypted) it reads back to the same keys.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pskcxml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("seed corpus: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	doc, err := Marshal(keysOf(2), WriteOptions{Key: rfcPSK})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	doc, err = Marshal(keysOf(1), WriteOptions{Password: "qwerty", Iterations: 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage><Key><Data><Secret><PlainValue>AA==</PlainValue></Secret><Counter><PlainValue>-1</PlainValue></Counter></Data></Key></KeyPackage></KeyContainer>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, ReadOptions{Key: rfcPSK, Password: "qwerty", AllowPlaintext: true})
		if err != nil {
			return
		}
		if len(c.Keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range c.Keys {
			if len(k.Secret) == 0 || len(k.Secret) > MaxSecretBytes || k.Package < 1 || k.Package > len(c.Keys) {
				t.Fatalf("key %+v", k)
			}
		}
		again, err := Marshal(c.Keys, WriteOptions{Key: rfcPSK})
		if err != nil {
			t.Fatalf("write what was read: %v", err)
		}
		c2, err := Parse(again, ReadOptions{Key: rfcPSK})
		if err != nil {
			t.Fatalf("read what was written: %v", err)
		}
		got, want := fmt.Sprint(deref(c2.Keys)), fmt.Sprint(deref(renumber(c.Keys)))
		if got != want {
			t.Fatalf("round trip\n got %s\nwant %s", got, want)
		}
	})
}

// renumber gives keys the package numbers Marshal writes: one per key.
func renumber(keys []Key) []Key {
	out := append([]Key(nil), keys...)
	for i := range out {
		out[i].Package = i + 1
	}
	return out
}
