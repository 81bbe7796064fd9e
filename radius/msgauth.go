package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
)

// layeh.com/radius knows the Message-Authenticator attribute's number
// (rfc2869) but neither computes nor checks it: this file does, per
// RFC 3579 §3.2 — HMAC-MD5 keyed with the shared secret over the whole
// packet with the attribute's value zeroed; in a response the Request
// Authenticator of the request stands in the authenticator field.

// typeMessageAuthenticator is the Message-Authenticator attribute (80).
const typeMessageAuthenticator = 80

// maLen is the length of a Message-Authenticator attribute: type, length
// and a 16-byte HMAC-MD5.
const maLen = 2 + md5.Size

// errMalformed is a packet whose framing does not hold.
var errMalformed = errors.New("malformed packet")

// packetLength checks the header's length field against raw and returns
// it: bytes past it are padding (RFC 2865 §3) and ignored.
func packetLength(raw []byte) (int, error) {
	if len(raw) < 20 {
		return 0, fmt.Errorf("%w: %d bytes", errMalformed, len(raw))
	}
	n := int(binary.BigEndian.Uint16(raw[2:4]))
	if n < 20 || n > 4096 || n > len(raw) {
		return 0, fmt.Errorf("%w: length field %d, %d bytes", errMalformed, n, len(raw))
	}
	return n, nil
}

// findMessageAuthenticator returns the offset of the Message-Authenticator
// value in raw (0 when the packet has none), walking the attributes: a
// packet with more than one, one of the wrong length, or attributes that
// do not fit the packet is malformed.
func findMessageAuthenticator(raw []byte) (int, error) {
	n, err := packetLength(raw)
	if err != nil {
		return 0, err
	}
	off := 0
	for i := 20; i < n; {
		if i+2 > n {
			return 0, fmt.Errorf("%w: attribute header past the end", errMalformed)
		}
		t, l := raw[i], int(raw[i+1])
		if l < 2 || i+l > n {
			return 0, fmt.Errorf("%w: attribute %d of length %d", errMalformed, t, l)
		}
		if t == typeMessageAuthenticator {
			if l != maLen || off != 0 {
				return 0, fmt.Errorf("%w: bad or repeated Message-Authenticator", errMalformed)
			}
			off = i + 2
		}
		i += l
	}
	return off, nil
}

// messageAuthenticator is the HMAC-MD5 of raw[:length] keyed with secret,
// with the 16 bytes at off taken as zero and auth in the authenticator
// field.
func messageAuthenticator(raw []byte, off int, auth []byte, secret []byte) []byte {
	n := int(binary.BigEndian.Uint16(raw[2:4]))
	var zero [md5.Size]byte
	h := hmac.New(md5.New, secret)
	h.Write(raw[:4])
	h.Write(auth)
	h.Write(raw[20:off])
	h.Write(zero[:])
	h.Write(raw[off+md5.Size : n])
	return h.Sum(nil)
}

// checkRequest reports whether the request's Message-Authenticator, at
// off, was made with secret.
func checkRequest(raw []byte, off int, secret []byte) bool {
	want := messageAuthenticator(raw, off, raw[4:20], secret)
	return hmac.Equal(want, raw[off:off+md5.Size])
}

// signResponse fills in the Message-Authenticator at off of an encoded
// response to a request with authenticator reqAuth, then its Response
// Authenticator (RFC 2865 §3), which covers the Message-Authenticator.
func signResponse(b []byte, off int, reqAuth [16]byte, secret []byte) {
	copy(b[off:off+md5.Size], messageAuthenticator(b, off, reqAuth[:], secret))
	h := md5.New()
	h.Write(b[:4])
	h.Write(reqAuth[:])
	h.Write(b[20:])
	h.Write(secret)
	h.Sum(b[4:4:20])
}

// SignRequest fills in the Message-Authenticator of an encoded request
// whose Message-Authenticator attribute is present and zeroed, as a NAS
// does before sending (for tests, benchmarks and tools that play the NAS).
func SignRequest(b, secret []byte) error {
	off, err := findMessageAuthenticator(b)
	if err != nil {
		return err
	}
	if off == 0 {
		return errors.New("radius: no Message-Authenticator attribute to fill in")
	}
	copy(b[off:off+md5.Size], messageAuthenticator(b, off, b[4:20], secret))
	return nil
}

// CheckResponse verifies, as a NAS does, that resp answers req and was
// made with secret: identifier, Response Authenticator, and the
// Message-Authenticator, which camotp puts first in every response.
func CheckResponse(resp, req, secret []byte) error {
	if len(resp) < 20 || len(req) < 20 || resp[1] != req[1] {
		return errors.New("radius: not an answer to this request")
	}
	off, err := findMessageAuthenticator(resp)
	if err != nil {
		return err
	}
	if off != 22 {
		return errors.New("radius: Message-Authenticator missing or not the first attribute")
	}
	h := md5.New()
	h.Write(resp[:4])
	h.Write(req[4:20])
	n := int(binary.BigEndian.Uint16(resp[2:4]))
	h.Write(resp[20:n])
	h.Write(secret)
	if !hmac.Equal(h.Sum(nil), resp[4:20]) {
		return errors.New("radius: bad Response Authenticator (wrong secret?)")
	}
	if !hmac.Equal(messageAuthenticator(resp, off, req[4:20], secret), resp[off:off+md5.Size]) {
		return errors.New("radius: bad Message-Authenticator (wrong secret?)")
	}
	return nil
}
