// Package httpx holds the JSON helpers camotp's HTTP APIs share: bounded,
// strict request decoding and uniform error bodies.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
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
	return DecodeLimit(w, r, v, MaxBody)
}

// DecodeLimit is Decode with a bound of its own: at most limit bytes.
func DecodeLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body exceeds %d bytes", limit)
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
		return fmt.Errorf("request body exceeds %d bytes", limit)
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

// ParsePrefixes parses a comma-separated list of CIDRs or addresses (an
// address alone is a /32 or /128).
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// hopAddr parses one X-Forwarded-For hop: an address, or (as some
// proxies write it) an address with a port, "1.2.3.4:5" or "[2001:db8::1]:5".
func hopAddr(hop string) (netip.Addr, error) {
	hop = strings.TrimSpace(hop)
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, nil
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr(), nil
	}
	return netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]"))
}

// TrustedProxies makes the client address of requests that come through
// one of trusted the address its proxies saw: when the direct peer is
// inside trusted, the right-most X-Forwarded-For address not inside
// trusted becomes r.RemoteAddr (so ClientIP, throttles and audit rows use
// it). Headers from any other peer are ignored: anyone can write them.
func TrustedProxies(trusted []netip.Prefix, h http.Handler) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	inside := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddr(ClientIP(r))
		if err != nil || !inside(peer) {
			h.ServeHTTP(w, r)
			return
		}
		// Walk the hops right to left: each trusted proxy vouches for the
		// address to its left; the first untrusted one is the client.
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := hopAddr(hops[i])
			if err != nil {
				break // garbage from further left cannot be trusted
			}
			if !inside(a) || i == 0 {
				r2 := r.WithContext(r.Context()) // a shallow copy
				r2.RemoteAddr = net.JoinHostPort(a.Unmap().String(), "0")
				h.ServeHTTP(w, r2)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Unavailable is an error that means "try again later": the server is at
// capacity or its storage cannot take writes. Its message is fit to show.
type Unavailable interface {
	error
	RetryAfter() time.Duration
}

// AsUnavailable returns the Unavailable error in err's chain.
func AsUnavailable(err error) (Unavailable, bool) {
	var u Unavailable
	ok := errors.As(err, &u)
	return u, ok
}

// SetRetryAfter sets the Retry-After header to d in whole seconds (at
// least 1).
func SetRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(int((d+time.Second-1)/time.Second), 1)))
}

// ServerError answers an error no handler expected: 503 with Retry-After
// and the reason for an Unavailable error, else 500 "internal error" (the
// details go to log only, as what).
func ServerError(w http.ResponseWriter, log *slog.Logger, what string, err error) {
	if WriteUnavailable(w, err) {
		log.Warn(what, "err", err)
		return
	}
	log.Error(what, "err", err)
	WriteError(w, http.StatusInternalServerError, "internal error")
}

// WriteUnavailable answers 503 with Retry-After and the reason when err is
// Unavailable, and says whether it did.
func WriteUnavailable(w http.ResponseWriter, err error) bool {
	u, ok := AsUnavailable(err)
	if ok {
		SetRetryAfter(w, u.RetryAfter())
		WriteError(w, http.StatusServiceUnavailable, u.Error())
	}
	return ok
}
