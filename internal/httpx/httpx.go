// Package httpx holds the JSON helpers camotp's HTTP APIs share: bounded,
// strict request decoding and uniform error bodies.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// MaxBody bounds a JSON request body.
const MaxBody = 64 * 1024

// Error is the JSON error body every API answers with.
type Error struct {
	Error string `json:"error"`
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteError writes {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, Error{Error: msg})
}

// Decode reads exactly one JSON object of at most MaxBody bytes into v,
// refusing unknown fields. The error is fit to show the client.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body exceeds %d bytes", MaxBody)
		}
		if errors.Is(err, io.EOF) {
			return errors.New("request body is empty: want a JSON object")
		}
		return fmt.Errorf("malformed JSON: %v", err)
	}
	// Only whitespace may follow, and the limit holds for it too: More()
	// would stop at the limit and let a longer body (or data past the
	// limit) through.
	_, err := dec.Token()
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &mbe):
		return fmt.Errorf("request body exceeds %d bytes", MaxBody)
	default:
		return errors.New("malformed JSON: trailing data after the object")
	}
}

// ClientIP is the request's source address without the port.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
