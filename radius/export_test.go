package radius

import (
	"bytes"
	"crypto/hmac"
	"errors"

	"layeh.com/radius"
)

// SignRequest fills in the Message-Authenticator of an encoded request whose
// first attribute is a zeroed one (what a NAS does).
func SignRequest(b, secret []byte) error {
	off, err := findMessageAuthenticator(b)
	if err != nil || off == 0 {
		return errors.New("no Message-Authenticator to fill in")
	}
	copy(b[off:off+16], messageAuthenticator(b, off, b[4:20], secret))
	return nil
}

// CheckResponse verifies a response's authenticator and its
// Message-Authenticator, which every response must carry.
func CheckResponse(resp, req, secret []byte) error {
	if !radius.IsAuthenticResponse(resp, req, secret) {
		return errors.New("bad Response Authenticator")
	}
	off, err := findMessageAuthenticator(resp)
	if err != nil {
		return err
	}
	if off != 22 {
		return errors.New("Message-Authenticator missing or not the first attribute")
	}
	want := messageAuthenticator(resp, off, req[4:20], secret)
	if !hmac.Equal(want, resp[off:off+16]) {
		return errors.New("bad Message-Authenticator")
	}
	if !bytes.Equal(resp[1:2], req[1:2]) {
		return errors.New("identifier mismatch")
	}
	return nil
}
