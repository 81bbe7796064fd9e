package pskc

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// ReadOptions are what Parse may decrypt with.
type ReadOptions struct {
	// Key is the pre-shared key (RFC 6030 §6.1): 16, 24 or 32 bytes.
	Key []byte
	// Password is the password a PBKDF2 key is derived from (§6.2).
	Password string
	// AllowPlaintext lets a secret in PlainValue through; otherwise such
	// a document is refused (ErrPlaintext).
	AllowPlaintext bool
}

// The document as read, before decryption. Elements are matched by local
// name: files in the wild put the PBKDF2 parameters in more than one
// namespace.
type xEncryptionKey struct {
	KeyName    string       `xml:"KeyName"`
	DerivedKey *xDerivedKey `xml:"DerivedKey"`
}

type xDerivedKey struct {
	Method struct {
		Algorithm string   `xml:"Algorithm,attr"`
		Params    *xPBKDF2 `xml:"PBKDF2-params"`
	} `xml:"KeyDerivationMethod"`
	MasterKeyName string `xml:"MasterKeyName"`
}

type xPBKDF2 struct {
	Salt           string `xml:"Salt>Specified"`
	IterationCount string `xml:"IterationCount"`
	KeyLength      string `xml:"KeyLength"`
	PRF            *struct {
		Algorithm string `xml:"Algorithm,attr"`
		Text      string `xml:",chardata"`
	} `xml:"PRF"`
}

type xMACMethod struct {
	Algorithm string      `xml:"Algorithm,attr"`
	MACKey    *xEncrypted `xml:"MACKey"`
}

type xEncrypted struct {
	Method struct {
		Algorithm string `xml:"Algorithm,attr"`
	} `xml:"EncryptionMethod"`
	CipherValue string `xml:"CipherData>CipherValue"`
}

type xDeviceInfo struct {
	Manufacturer string `xml:"Manufacturer"`
	SerialNo     string `xml:"SerialNo"`
	Model        string `xml:"Model"`
}

type xValue struct {
	PlainValue     *string     `xml:"PlainValue"`
	EncryptedValue *xEncrypted `xml:"EncryptedValue"`
	ValueMAC       string      `xml:"ValueMAC"`
}

type xKey struct {
	ID         string `xml:"Id,attr"`
	Algorithm  string `xml:"Algorithm,attr"`
	Issuer     string `xml:"Issuer"`
	Parameters struct {
		Suite          string `xml:"Suite"`
		ResponseFormat struct {
			Length   string `xml:"Length,attr"`
			Encoding string `xml:"Encoding,attr"`
		} `xml:"ResponseFormat"`
	} `xml:"AlgorithmParameters"`
	Data struct {
		Secret       *xValue `xml:"Secret"`
		Counter      *xValue `xml:"Counter"`
		Time         *xValue `xml:"Time"`
		TimeInterval *xValue `xml:"TimeInterval"`
		TimeDrift    *xValue `xml:"TimeDrift"`
	} `xml:"Data"`
}

type xKeyPackage struct {
	Device xDeviceInfo
	Keys   []xKey
}

// Parse reads a PSKC 1.0 document and decrypts its keys with opt. It
// refuses documents past MaxDocumentBytes or MaxKeys, encrypted values
// whose MAC does not verify, and secrets in plain text unless
// opt.AllowPlaintext. An error about one key is a *KeyError.
func Parse(data []byte, opt ReadOptions) (*Container, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxDocumentBytes)
	}
	doc, err := decode(data)
	if err != nil {
		return nil, err
	}
	return doc.open(opt)
}

// document is what decode read.
type document struct {
	encKey   *xEncryptionKey
	mac      *xMACMethod
	packages []xKeyPackage
}

// decode reads the document's structure, one key package at a time so
// that MaxKeys holds before the keys are in memory.
func decode(data []byte) (*document, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var root *xml.StartElement
	for root == nil {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, errors.New("not a PSKC document: no KeyContainer element")
		}
		if err != nil {
			return nil, fmt.Errorf("not a PSKC document: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = &se
		}
	}
	if root.Name.Local != "KeyContainer" || root.Name.Space != NamespacePSKC {
		return nil, fmt.Errorf("not a PSKC document: root element is {%s}%s, want {%s}KeyContainer", root.Name.Space, root.Name.Local, NamespacePSKC)
	}
	version := ""
	for _, a := range root.Attr {
		if a.Name.Local == "Version" && a.Name.Space == "" {
			version = a.Value
		}
	}
	if version != "1.0" {
		return nil, fmt.Errorf("PSKC version %s is not supported (want 1.0)", quote(version))
	}
	doc := &document{}
	keys := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read PSKC document: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "EncryptionKey":
				doc.encKey = &xEncryptionKey{}
				err = dec.DecodeElement(doc.encKey, &t)
			case "MACMethod":
				doc.mac = &xMACMethod{}
				err = dec.DecodeElement(doc.mac, &t)
			case "KeyPackage":
				if len(doc.packages) >= MaxKeys {
					return nil, fmt.Errorf("%w: more than %d key packages", ErrTooLarge, MaxKeys)
				}
				var kp xKeyPackage
				kp, err = decodePackage(dec, &keys)
				doc.packages = append(doc.packages, kp)
			default:
				err = dec.Skip()
			}
			if err != nil {
				var ke *KeyError
				if errors.As(err, &ke) || errors.Is(err, ErrTooLarge) {
					return nil, err
				}
				return nil, fmt.Errorf("read PSKC %s: %w", t.Name.Local, err)
			}
		case xml.EndElement:
			if err := trailer(dec); err != nil {
				return nil, err
			}
			return doc, nil
		}
	}
}

// trailer checks that nothing but comments and white space follows the
// root element.
func trailer(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read PSKC document: %w", err)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return errors.New("read PSKC document: text after the KeyContainer element")
			}
		default:
			return errors.New("read PSKC document: content after the KeyContainer element")
		}
	}
}

// decodePackage reads one KeyPackage's DeviceInfo and keys; *keys counts
// the keys read so far in the document.
func decodePackage(dec *xml.Decoder, keys *int) (xKeyPackage, error) {
	var kp xKeyPackage
	for {
		tok, err := dec.Token()
		if err != nil {
			return kp, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "DeviceInfo":
				err = dec.DecodeElement(&kp.Device, &t)
			case "Key":
				if *keys >= MaxKeys {
					return kp, fmt.Errorf("%w: more than %d keys", ErrTooLarge, MaxKeys)
				}
				*keys++
				var k xKey
				err = dec.DecodeElement(&k, &t)
				kp.Keys = append(kp.Keys, k)
			default:
				err = dec.Skip()
			}
			if err != nil {
				return kp, err
			}
		case xml.EndElement:
			return kp, nil
		}
	}
}

// opener decrypts a document's values.
type opener struct {
	protection Protection // of the encryption key
	key        []byte     // nil when none was given
	needKey    error      // why a missing key is missing
	macHash    func() hash.Hash
	macKey     []byte
	macErr     error // why values cannot be checked
}

// open derives the keys and decrypts every key package.
func (doc *document) open(opt ReadOptions) (*Container, error) {
	c := &Container{Protection: Plaintext}
	op := &opener{protection: PreSharedKey, key: opt.Key, needKey: ErrNeedKey}
	if ek := doc.encKey; ek != nil {
		c.KeyName = strings.TrimSpace(ek.KeyName)
		if ek.DerivedKey != nil {
			op.protection, op.key, op.needKey = Password, nil, ErrNeedPassword
			c.KeyName = strings.TrimSpace(ek.DerivedKey.MasterKeyName)
			if opt.Password != "" {
				k, err := deriveKey(ek.DerivedKey, opt.Password)
				if err != nil {
					return nil, fmt.Errorf("EncryptionKey: %w", err)
				}
				op.key = k
			}
		}
	}
	if len(doc.packages) == 0 {
		return nil, errors.New("PSKC document holds no key package")
	}
	if doc.mac == nil {
		op.macErr = errors.New("encrypted value but the document has no MACMethod: CBC values need a MAC (RFC 6030 §6.1.1)")
	} else if h, err := macHash(doc.mac.Algorithm); err != nil {
		op.macErr = fmt.Errorf("MACMethod: %w", err)
	} else if doc.mac.MACKey == nil {
		op.macErr = errors.New("MACMethod has no MACKey")
	} else {
		op.macHash = h
	}
	plaintext := false
	for i, kp := range doc.packages {
		if len(kp.Keys) == 0 {
			return nil, &KeyError{Package: i + 1, SerialNo: kp.Device.SerialNo, Err: errors.New("holds no Key")}
		}
		for _, xk := range kp.Keys {
			k, enc, err := op.key1(xk, opt.AllowPlaintext, doc.mac)
			if err != nil {
				return nil, &KeyError{Package: i + 1, SerialNo: strings.TrimSpace(kp.Device.SerialNo), ID: xk.ID, Err: err}
			}
			plaintext = plaintext || !enc
			k.Package = i + 1
			k.Manufacturer = strings.TrimSpace(kp.Device.Manufacturer)
			k.SerialNo = strings.TrimSpace(kp.Device.SerialNo)
			k.Model = strings.TrimSpace(kp.Device.Model)
			c.Keys = append(c.Keys, k)
		}
	}
	if !plaintext {
		c.Protection = op.protection
	}
	return c, nil
}

// deriveKey runs PBKDF2 as the DerivedKey says, within MaxIterations.
func deriveKey(dk *xDerivedKey, password string) ([]byte, error) {
	if dk.Method.Algorithm != PBKDF2 {
		return nil, fmt.Errorf("key derivation %s is not supported (want PBKDF2)", quote(dk.Method.Algorithm))
	}
	p := dk.Method.Params
	if p == nil {
		return nil, errors.New("PBKDF2 without PBKDF2-params")
	}
	salt, err := decodeB64(p.Salt)
	if err != nil || len(salt) == 0 || len(salt) > 1024 {
		return nil, errors.New("PBKDF2 salt must be 1 to 1024 bytes of base64 (Salt/Specified)")
	}
	iter, err := strconv.Atoi(strings.TrimSpace(p.IterationCount))
	if err != nil || iter < 1 || iter > MaxIterations {
		return nil, fmt.Errorf("PBKDF2 IterationCount must be 1 to %d, got %s", MaxIterations, quote(strings.TrimSpace(p.IterationCount)))
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.KeyLength))
	if err != nil || (n != 16 && n != 24 && n != 32) {
		return nil, fmt.Errorf("PBKDF2 KeyLength must be 16, 24 or 32, got %s", quote(strings.TrimSpace(p.KeyLength)))
	}
	prf := HMACSHA1 // PKCS #5's default
	if p.PRF != nil {
		if a := strings.TrimSpace(p.PRF.Algorithm); a != "" {
			prf = a
		} else if t := strings.TrimSpace(p.PRF.Text); t != "" {
			prf = t
		}
	}
	h, err := macHash(prf)
	if err != nil {
		return nil, fmt.Errorf("PBKDF2 PRF: %w", err)
	}
	k, err := pbkdf2.Key(h, password, salt, iter, n)
	if err != nil {
		return nil, fmt.Errorf("PBKDF2: %w", err)
	}
	return k, nil
}

// key1 decrypts one key; enc says whether its secret was encrypted.
func (op *opener) key1(xk xKey, allowPlain bool, mac *xMACMethod) (Key, bool, error) {
	k := Key{ID: xk.ID, Algorithm: strings.TrimSpace(xk.Algorithm), Issuer: strings.TrimSpace(xk.Issuer),
		Suite: strings.TrimSpace(xk.Parameters.Suite), Encoding: xk.Parameters.ResponseFormat.Encoding}
	if l := xk.Parameters.ResponseFormat.Length; l != "" {
		d, err := strconv.Atoi(l)
		if err != nil || d < 1 || d > 10 {
			return k, false, fmt.Errorf("ResponseFormat Length must be 1 to 10, got %s", quote(l))
		}
		k.Digits = d
	}
	if xk.Data.Secret == nil {
		return k, false, errors.New("no Data/Secret")
	}
	secret, enc, err := op.value(xk.Data.Secret, mac)
	if err != nil {
		return k, false, fmt.Errorf("Secret: %w", err)
	}
	if !enc {
		if !allowPlain {
			return k, false, ErrPlaintext
		}
		if secret, err = decodeB64(*xk.Data.Secret.PlainValue); err != nil {
			return k, false, fmt.Errorf("Secret: %w", err)
		}
	}
	if len(secret) == 0 || len(secret) > MaxSecretBytes {
		return k, false, fmt.Errorf("Secret must be 1 to %d bytes, got %d", MaxSecretBytes, len(secret))
	}
	k.Secret = secret
	ints := []struct {
		name string
		v    *xValue
		set  func(int64, uint64)
	}{
		{"Counter", xk.Data.Counter, func(_ int64, u uint64) { k.Counter = &u }},
		{"Time", xk.Data.Time, func(i int64, _ uint64) { k.Time = &i }},
		{"TimeInterval", xk.Data.TimeInterval, func(i int64, _ uint64) { k.TimeInterval = &i }},
		{"TimeDrift", xk.Data.TimeDrift, func(i int64, _ uint64) { k.TimeDrift = &i }},
	}
	for _, f := range ints {
		if f.v == nil {
			continue
		}
		i, u, err := op.integer(f.v, mac)
		if err != nil {
			return k, false, fmt.Errorf("%s: %w", f.name, err)
		}
		if f.name == "Counter" && i < 0 {
			return k, false, errors.New("Counter is negative")
		}
		f.set(i, u)
	}
	return k, enc, nil
}

// value returns an encrypted value decrypted, its MAC checked first; for
// a plain value it returns enc false and leaves decoding to the caller.
func (op *opener) value(v *xValue, mac *xMACMethod) (plain []byte, enc bool, err error) {
	if v.EncryptedValue == nil {
		if v.PlainValue == nil {
			return nil, false, errors.New("neither PlainValue nor EncryptedValue")
		}
		return nil, false, nil
	}
	if op.key == nil {
		return nil, true, op.needKey
	}
	if op.macErr != nil {
		return nil, true, op.macErr
	}
	if op.macKey == nil {
		mk, err := decodeB64(mac.MACKey.CipherValue)
		if err == nil {
			mk, err = cbcDecrypt(mac.MACKey.Method.Algorithm, op.key, mk)
		}
		if err != nil || len(mk) == 0 {
			op.macErr = fmt.Errorf("MACKey does not decrypt: %v", err)
			return nil, true, op.macErr
		}
		op.macKey = mk
	}
	data, err := decodeB64(v.EncryptedValue.CipherValue)
	if err != nil {
		return nil, true, fmt.Errorf("CipherValue: %w", err)
	}
	if strings.TrimSpace(v.ValueMAC) == "" {
		return nil, true, errors.New("encrypted value without ValueMAC")
	}
	want, err := decodeB64(v.ValueMAC)
	if err != nil {
		return nil, true, fmt.Errorf("ValueMAC: %w", err)
	}
	if !hmac.Equal(valueMAC(op.macHash, op.macKey, data), want) {
		return nil, true, ErrMAC
	}
	plain, err = cbcDecrypt(v.EncryptedValue.Method.Algorithm, op.key, data)
	return plain, true, err
}

// integer reads an intDataType value: decimal text in PlainValue, or the
// big-endian bytes of the number encrypted.
func (op *opener) integer(v *xValue, mac *xMACMethod) (int64, uint64, error) {
	plain, enc, err := op.value(v, mac)
	if err != nil {
		return 0, 0, err
	}
	if !enc {
		s := strings.TrimSpace(*v.PlainValue)
		if strings.HasPrefix(s, "-") {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("PlainValue %s is not an integer", quote(s))
			}
			return i, 0, nil
		}
		u, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return 0, 0, fmt.Errorf("PlainValue %s is not an integer", quote(s))
		}
		return int64(u), u, nil
	}
	if len(plain) == 0 || len(plain) > 8 {
		return 0, 0, fmt.Errorf("encrypted integer is %d bytes, want 1 to 8", len(plain))
	}
	var u uint64
	for _, b := range plain {
		u = u<<8 | uint64(b)
	}
	return int64(u), u, nil
}
