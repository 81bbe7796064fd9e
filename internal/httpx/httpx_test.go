package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.0.2.7,::1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer, one hop", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left part skipped", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9", "192.0.2.7"}, "198.51.100.1"},
		{"trusted peer, no header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"garbage right of the client", "10.1.2.3:4000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"only trusted hops", "10.1.2.3:4000", []string{"10.0.0.1"}, "10.0.0.1"},
		{"ipv6 loopback proxy", "[::1]:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"single address is /32", "192.0.2.8:1", []string{"198.51.100.1"}, "192.0.2.8"},
		{"hop with a port", "10.1.2.3:4000", []string{"198.51.100.1:5123"}, "198.51.100.1"},
		{"ipv6 hop with a port", "10.1.2.3:4000", []string{"[2001:db8::7]:5123"}, "2001:db8::7"},
		{"bracketed ipv6 hop", "10.1.2.3:4000", []string{"[2001:db8::7]"}, "2001:db8::7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			h := TrustedProxies(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientIP(r) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tc.want {
				t.Fatalf("client = %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "10.0.0.1/x"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}
