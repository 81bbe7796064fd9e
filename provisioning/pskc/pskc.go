// Package pskc reads and writes Portable Symmetric Key Container documents
// (PSKC 1.0, RFC 6030): the XML files token makers ship seeds in, and the
// format camotp exports seeds in for a migration.
//
// Values are encrypted as RFC 6030 §6 says: with a pre-shared key (§6.1)
// or with a key derived from a password by PBKDF2 (§6.2), in AES-CBC with
// the IV before the ciphertext, each encrypted value followed by an HMAC
// (ValueMAC) over IV and ciphertext under a MAC key that travels encrypted
// in MACMethod/MACKey. The MAC is checked before anything is decrypted.
// A secret in plain text is refused unless the reader allows it.
//
// Inputs are bounded (MaxDocumentBytes, MaxKeys, MaxIterations) and every
// error about one key names its key package (KeyError).
package pskc

import (
	"errors"
	"fmt"
	"strings"
)

// Namespaces and algorithm identifiers of RFC 6030 and the XML
// encryption, signature and PKCS #5 specifications it uses.
const (
	NamespacePSKC  = "urn:ietf:params:xml:ns:keyprov:pskc"
	NamespaceXEnc  = "http://www.w3.org/2001/04/xmlenc#"
	NamespaceXEnc1 = "http://www.w3.org/2009/xmlenc11#"
	NamespaceDSig  = "http://www.w3.org/2000/09/xmldsig#"
	NamespacePKCS5 = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#"

	AlgorithmHOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
	AlgorithmTOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp"

	AES128CBC = NamespaceXEnc + "aes128-cbc"
	AES192CBC = NamespaceXEnc + "aes192-cbc"
	AES256CBC = NamespaceXEnc + "aes256-cbc"

	HMACSHA1   = NamespaceDSig + "hmac-sha1"
	HMACSHA224 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224"
	HMACSHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	HMACSHA384 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384"
	HMACSHA512 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"

	PBKDF2 = NamespacePKCS5 + "pbkdf2"
)

// Bounds on what Parse reads.
const (
	// MaxDocumentBytes is the largest document Parse reads.
	MaxDocumentBytes = 16 << 20
	// MaxKeys is the most keys one document may hold (and Write writes).
	MaxKeys = 10000
	// MaxIterations is the most PBKDF2 iterations Parse runs: a document
	// cannot make the reader spend more than a few seconds on its key.
	MaxIterations = 5_000_000
	// MaxSecretBytes is the largest secret Parse accepts.
	MaxSecretBytes = 1024
)

// Protection is how a document's secrets are protected.
type Protection string

// The protections RFC 6030 §6 defines that this package reads.
const (
	Plaintext    Protection = "plaintext"
	PreSharedKey Protection = "pre-shared-key"
	Password     Protection = "password"
)

// Key is one key of a key package, decrypted.
type Key struct {
	// Package is the key package's position in the document, from 1.
	Package int
	// Device information (DeviceInfo).
	Manufacturer, SerialNo, Model string
	// ID is the Key's Id; Algorithm its algorithm URI (AlgorithmHOTP,
	// AlgorithmTOTP, …); Issuer its Issuer.
	ID, Algorithm, Issuer string
	// Suite is AlgorithmParameters/Suite (TOTP: HMAC-SHA1, HMAC-SHA256,
	// HMAC-SHA512); empty when absent.
	Suite string
	// Digits is ResponseFormat's Length, Encoding its Encoding (DECIMAL).
	Digits   int
	Encoding string
	// Secret is the key's secret, decrypted.
	Secret []byte
	// Counter (HOTP), Time (TOTP T0, seconds since the epoch),
	// TimeInterval (TOTP step, seconds) and TimeDrift (steps); nil when
	// absent.
	Counter      *uint64
	Time         *int64
	TimeInterval *int64
	TimeDrift    *int64
}

// Container is a PSKC document's keys in document order.
type Container struct {
	// Protection is how the document protected its secrets.
	Protection Protection
	// KeyName is the pre-shared key's name (ds:KeyName) or the password's
	// (MasterKeyName), when the document gives one.
	KeyName string
	Keys    []Key
}

// KeyError is an error about one key of a document: it names the key
// package (position, serial, key Id) that failed.
type KeyError struct {
	Package      int
	SerialNo, ID string
	Err          error
}

func (e *KeyError) Error() string {
	var who []string
	if e.SerialNo != "" {
		who = append(who, "serial "+quote(e.SerialNo))
	}
	if e.ID != "" {
		who = append(who, "key "+quote(e.ID))
	}
	s := fmt.Sprintf("key package %d", e.Package)
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *KeyError) Unwrap() error { return e.Err }

// quote shows a value from the document in an error, bounded and with
// control characters escaped.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Errors callers branch on.
var (
	// ErrPlaintext: the document holds a secret in plain text and the
	// reader did not allow it.
	ErrPlaintext = errors.New("secret is not encrypted (plain text refused; allow plaintext to import it)")
	// ErrNeedKey: the document is encrypted with a pre-shared key and
	// none was given.
	ErrNeedKey = errors.New("document is encrypted with a pre-shared key: give the key")
	// ErrNeedPassword: the document's key is derived from a password
	// (PBKDF2) and none was given.
	ErrNeedPassword = errors.New("document is encrypted with a password-derived key (PBKDF2): give the password")
	// ErrMAC: a ValueMAC does not match (wrong key, or the value was
	// changed).
	ErrMAC = errors.New("ValueMAC does not match: wrong key or password, or the value was altered")
	// ErrTooLarge: the document is past MaxDocumentBytes or MaxKeys.
	ErrTooLarge = errors.New("document too large")
)
