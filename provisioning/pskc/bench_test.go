package pskc

import "testing"

// BenchmarkParse10k reads a document of MaxKeys keys encrypted with a
// pre-shared key (each value's MAC checked, then decrypted).
func BenchmarkParse10k(b *testing.B) {
	doc, err := Marshal(keysOf(MaxKeys), WriteOptions{Key: rfcPSK})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Parse(doc, ReadOptions{Key: rfcPSK}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshal10k writes MaxKeys keys with a pre-shared key.
func BenchmarkMarshal10k(b *testing.B) {
	keys := keysOf(MaxKeys)
	for b.Loop() {
		if _, err := Marshal(keys, WriteOptions{Key: rfcPSK}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordDefault writes one key under a password with
// DefaultIterations: the cost of the key derivation an export pays once.
func BenchmarkPasswordDefault(b *testing.B) {
	keys := keysOf(1)
	for b.Loop() {
		if _, err := Marshal(keys, WriteOptions{Password: "pw"}); err != nil {
			b.Fatal(err)
		}
	}
}
