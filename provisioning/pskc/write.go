package pskc

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
)

// DefaultIterations is the PBKDF2 iteration count Write uses unless told
// otherwise (PRF HMAC-SHA256; OWASP's 2023 figure).
const DefaultIterations = 600_000

// WriteOptions say how Marshal protects the secrets: exactly one of Key
// and Password. It never writes a secret in plain text.
type WriteOptions struct {
	// Key is a pre-shared key of 16, 24 or 32 bytes: AES-128/192/256-CBC.
	Key []byte
	// Password derives an AES-256 key by PBKDF2-HMAC-SHA256 with a fresh
	// random salt and Iterations (DefaultIterations when 0).
	Password   string
	Iterations int
	// KeyName names the key or password in the document (ds:KeyName,
	// xenc11:MasterKeyName) so the reader knows which one to use.
	KeyName string
}

// The document as written: element names carry their prefixes, declared
// on the root, so the file reads like the RFC's examples.
type wContainer struct {
	XMLName    xml.Name       `xml:"urn:ietf:params:xml:ns:keyprov:pskc KeyContainer"`
	Version    string         `xml:"Version,attr"`
	NSDSig     string         `xml:"xmlns:ds,attr"`
	NSXEnc     string         `xml:"xmlns:xenc,attr"`
	NSXEnc11   string         `xml:"xmlns:xenc11,attr,omitempty"`
	NSPKCS5    string         `xml:"xmlns:pkcs5,attr,omitempty"`
	EncKey     wEncryptionKey `xml:"EncryptionKey"`
	MACMethod  wMACMethod     `xml:"MACMethod"`
	KeyPackage []wKeyPackage  `xml:"KeyPackage"`
}

type wEncryptionKey struct {
	KeyName    string       `xml:"ds:KeyName,omitempty"`
	DerivedKey *wDerivedKey `xml:"xenc11:DerivedKey,omitempty"`
}

type wDerivedKey struct {
	Method struct {
		Algorithm string `xml:"Algorithm,attr"`
		Params    struct {
			Salt       string `xml:"Salt>Specified"`
			Iterations int    `xml:"IterationCount"`
			KeyLength  int    `xml:"KeyLength"`
			PRF        struct {
				Algorithm string `xml:"Algorithm,attr"`
			} `xml:"PRF"`
		} `xml:"pkcs5:PBKDF2-params"`
	} `xml:"xenc11:KeyDerivationMethod"`
	MasterKeyName string `xml:"xenc11:MasterKeyName,omitempty"`
}

type wEncrypted struct {
	Method struct {
		Algorithm string `xml:"Algorithm,attr"`
	} `xml:"xenc:EncryptionMethod"`
	CipherValue string `xml:"xenc:CipherData>xenc:CipherValue"`
}

type wMACMethod struct {
	Algorithm string     `xml:"Algorithm,attr"`
	MACKey    wEncrypted `xml:"MACKey"`
}

type wDeviceInfo struct {
	Manufacturer string `xml:"Manufacturer,omitempty"`
	SerialNo     string `xml:"SerialNo,omitempty"`
	Model        string `xml:"Model,omitempty"`
}

type wValue struct {
	PlainValue     string      `xml:"PlainValue,omitempty"`
	EncryptedValue *wEncrypted `xml:"EncryptedValue,omitempty"`
	ValueMAC       string      `xml:"ValueMAC,omitempty"`
}

type wResponseFormat struct {
	Length   int    `xml:"Length,attr"`
	Encoding string `xml:"Encoding,attr"`
}

type wKey struct {
	ID         string `xml:"Id,attr"`
	Algorithm  string `xml:"Algorithm,attr"`
	Issuer     string `xml:"Issuer,omitempty"`
	Parameters *struct {
		Suite          string           `xml:"Suite,omitempty"`
		ResponseFormat *wResponseFormat `xml:"ResponseFormat,omitempty"`
	} `xml:"AlgorithmParameters,omitempty"`
	Data struct {
		Secret       wValue  `xml:"Secret"`
		Counter      *wValue `xml:"Counter,omitempty"`
		Time         *wValue `xml:"Time,omitempty"`
		TimeInterval *wValue `xml:"TimeInterval,omitempty"`
		TimeDrift    *wValue `xml:"TimeDrift,omitempty"`
	} `xml:"Data"`
}

type wKeyPackage struct {
	DeviceInfo *wDeviceInfo `xml:"DeviceInfo,omitempty"`
	Key        wKey         `xml:"Key"`
}

// sealer encrypts values for Marshal.
type sealer struct {
	alg    string
	key    []byte
	macKey []byte
}

func (s *sealer) seal(plain []byte) (*wEncrypted, string, error) {
	data, err := cbcEncrypt(s.key, plain)
	if err != nil {
		return nil, "", err
	}
	e := &wEncrypted{CipherValue: base64.StdEncoding.EncodeToString(data)}
	e.Method.Algorithm = s.alg
	return e, base64.StdEncoding.EncodeToString(valueMAC(sha256.New, s.macKey, data)), nil
}

// Marshal writes keys as an encrypted PSKC 1.0 document, one key package
// per key: each secret AES-CBC encrypted with a fresh IV, followed by its
// HMAC-SHA256 ValueMAC under a fresh random MAC key carried encrypted in
// MACMethod/MACKey. Counter, Time, TimeInterval and TimeDrift go in plain
// text, as RFC 6030's examples have them.
func Marshal(keys []Key, opt WriteOptions) ([]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys to write")
	}
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("%w: %d keys, at most %d per document", ErrTooLarge, len(keys), MaxKeys)
	}
	doc := wContainer{Version: "1.0", NSDSig: NamespaceDSig, NSXEnc: NamespaceXEnc}
	s := &sealer{}
	switch {
	case len(opt.Key) > 0 && opt.Password != "":
		return nil, errors.New("give a key or a password, not both")
	case len(opt.Key) > 0:
		alg, err := cipherFor(len(opt.Key))
		if err != nil {
			return nil, err
		}
		s.alg, s.key = alg, opt.Key
		doc.EncKey.KeyName = opt.KeyName
		if doc.EncKey.KeyName == "" {
			doc.EncKey.KeyName = "Pre-shared-key"
		}
	case opt.Password != "":
		iter := opt.Iterations
		if iter == 0 {
			iter = DefaultIterations
		}
		if iter < 1 || iter > MaxIterations {
			return nil, fmt.Errorf("PBKDF2 iterations must be 1 to %d, got %d", MaxIterations, iter)
		}
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("salt: %w", err)
		}
		k, err := pbkdf2.Key(sha256.New, opt.Password, salt, iter, 32)
		if err != nil {
			return nil, fmt.Errorf("PBKDF2: %w", err)
		}
		s.alg, s.key = AES256CBC, k
		dk := &wDerivedKey{MasterKeyName: opt.KeyName}
		dk.Method.Algorithm = PBKDF2
		dk.Method.Params.Salt = base64.StdEncoding.EncodeToString(salt)
		dk.Method.Params.Iterations = iter
		dk.Method.Params.KeyLength = 32
		dk.Method.Params.PRF.Algorithm = HMACSHA256
		doc.EncKey.DerivedKey = dk
		doc.NSXEnc11, doc.NSPKCS5 = NamespaceXEnc1, NamespacePKCS5
	default:
		return nil, errors.New("give a key or a password: secrets are never written in plain text")
	}
	s.macKey = make([]byte, 32)
	if _, err := rand.Read(s.macKey); err != nil {
		return nil, fmt.Errorf("MAC key: %w", err)
	}
	mk, err := cbcEncrypt(s.key, s.macKey)
	if err != nil {
		return nil, err
	}
	doc.MACMethod.Algorithm = HMACSHA256
	doc.MACMethod.MACKey.Method.Algorithm = s.alg
	doc.MACMethod.MACKey.CipherValue = base64.StdEncoding.EncodeToString(mk)
	for i, k := range keys {
		kp, err := s.keyPackage(k)
		if err != nil {
			return nil, &KeyError{Package: i + 1, SerialNo: k.SerialNo, ID: k.ID, Err: err}
		}
		doc.KeyPackage = append(doc.KeyPackage, kp)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode PSKC: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func (s *sealer) keyPackage(k Key) (wKeyPackage, error) {
	if len(k.Secret) == 0 || len(k.Secret) > MaxSecretBytes {
		return wKeyPackage{}, fmt.Errorf("Secret must be 1 to %d bytes, got %d", MaxSecretBytes, len(k.Secret))
	}
	var kp wKeyPackage
	if k.Manufacturer != "" || k.SerialNo != "" || k.Model != "" {
		kp.DeviceInfo = &wDeviceInfo{Manufacturer: k.Manufacturer, SerialNo: k.SerialNo, Model: k.Model}
	}
	wk := &kp.Key
	wk.ID, wk.Algorithm, wk.Issuer = k.ID, k.Algorithm, k.Issuer
	if k.Suite != "" || k.Digits != 0 {
		wk.Parameters = &struct {
			Suite          string           `xml:"Suite,omitempty"`
			ResponseFormat *wResponseFormat `xml:"ResponseFormat,omitempty"`
		}{Suite: k.Suite}
		if k.Digits != 0 {
			enc := k.Encoding
			if enc == "" {
				enc = "DECIMAL"
			}
			wk.Parameters.ResponseFormat = &wResponseFormat{Length: k.Digits, Encoding: enc}
		}
	}
	e, mac, err := s.seal(k.Secret)
	if err != nil {
		return kp, err
	}
	wk.Data.Secret = wValue{EncryptedValue: e, ValueMAC: mac}
	plain := func(i int64) *wValue { return &wValue{PlainValue: strconv.FormatInt(i, 10)} }
	if k.Counter != nil {
		wk.Data.Counter = &wValue{PlainValue: strconv.FormatUint(*k.Counter, 10)}
	}
	if k.Time != nil {
		wk.Data.Time = plain(*k.Time)
	}
	if k.TimeInterval != nil {
		wk.Data.TimeInterval = plain(*k.TimeInterval)
	}
	if k.TimeDrift != nil {
		wk.Data.TimeDrift = plain(*k.TimeDrift)
	}
	return kp, nil
}
