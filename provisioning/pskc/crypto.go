package pskc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// cipherKeySize is the AES key size of an encryption algorithm URI.
func cipherKeySize(alg string) (int, error) {
	switch alg {
	case AES128CBC:
		return 16, nil
	case AES192CBC:
		return 24, nil
	case AES256CBC:
		return 32, nil
	case "":
		return 0, errors.New("encrypted value names no EncryptionMethod algorithm")
	}
	return 0, fmt.Errorf("encryption algorithm %s is not supported (want aes128-cbc, aes192-cbc or aes256-cbc)", quote(alg))
}

// cipherFor is the encryption algorithm URI for an AES key of n bytes.
func cipherFor(n int) (string, error) {
	switch n {
	case 16:
		return AES128CBC, nil
	case 24:
		return AES192CBC, nil
	case 32:
		return AES256CBC, nil
	}
	return "", fmt.Errorf("key must be 16, 24 or 32 bytes (AES-128, -192, -256), got %d", n)
}

// macHash is the hash of a MAC algorithm URI.
func macHash(alg string) (func() hash.Hash, error) {
	switch alg {
	case HMACSHA1:
		return sha1.New, nil
	case HMACSHA224:
		return sha256.New224, nil
	case HMACSHA256:
		return sha256.New, nil
	case HMACSHA384:
		return sha512.New384, nil
	case HMACSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("MAC algorithm %s is not supported (want hmac-sha1, -sha224, -sha256, -sha384 or -sha512)", quote(alg))
}

// decodeB64 decodes standard base64 with any whitespace inside (documents
// wrap long values).
func decodeB64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return b, nil
}

// cbcDecrypt opens IV ‖ ciphertext with key under alg and removes the
// PKCS #7 padding. Call it only on a value whose MAC was checked.
func cbcDecrypt(alg string, key, data []byte) ([]byte, error) {
	size, err := cipherKeySize(alg)
	if err != nil {
		return nil, err
	}
	if len(key) != size {
		return nil, fmt.Errorf("%s needs a %d-byte key, the key given has %d bytes", alg[len(NamespaceXEnc):], size, len(key))
	}
	if len(data) < 2*aes.BlockSize || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("encrypted value is %d bytes: want an IV and whole blocks", len(data))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cipher: %w", err)
	}
	iv, ct := data[:aes.BlockSize], data[aes.BlockSize:]
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
	n := int(out[len(out)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, errors.New("bad padding: wrong key or password")
	}
	for _, b := range out[len(out)-n:] {
		if int(b) != n {
			return nil, errors.New("bad padding: wrong key or password")
		}
	}
	return out[:len(out)-n], nil
}

// cbcEncrypt returns a fresh random IV ‖ the PKCS #7 padded plaintext
// encrypted with key in CBC mode.
func cbcEncrypt(key, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cipher: %w", err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	padded := make([]byte, len(plain)+n)
	copy(padded, plain)
	for i := len(plain); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	out := make([]byte, aes.BlockSize+len(padded))
	if _, err := rand.Read(out[:aes.BlockSize]); err != nil {
		return nil, fmt.Errorf("iv: %w", err)
	}
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], padded)
	return out, nil
}

// valueMAC is the ValueMAC of an encrypted value (RFC 6030 §6.1.1: over
// IV ‖ ciphertext).
func valueMAC(h func() hash.Hash, key, encrypted []byte) []byte {
	m := hmac.New(h, key)
	m.Write(encrypted)
	return m.Sum(nil)
}
