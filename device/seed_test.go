package device

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B test vectors.
func TestRFC6238Vectors(t *testing.T) {
	secrets := map[string]string{
		"SHA1":   "12345678901234567890",
		"SHA256": "12345678901234567890123456789012",
		"SHA512": "1234567890123456789012345678901234567890123456789012345678901234",
	}
	tests := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+time.Unix(tc.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			seed := Seed{Secret: []byte(secrets[tc.alg]), Algorithm: tc.alg, Digits: 8, Period: 30}
			// Through the camera: Authenticator screen at that time.
			cam, err := New(Config{Serial: "RFC", Model: Body3, Clock: FixedClock{T: time.Unix(tc.unix, 0)}, Seeds: TestSeed{S: seed}})
			if err != nil {
				t.Fatal(err)
			}
			cam.screen = AuthenticatorScreen
			s := cam.Screen()
			if s.Code != tc.want || !strings.Contains(s.Text(), tc.want) {
				t.Fatalf("screen code = %q, want %q\n%s", s.Code, tc.want, s.Text())
			}
		})
	}
}

func TestSeedValidate(t *testing.T) {
	good := DefaultSeed([]byte("12345678901234567890"))
	tests := []struct {
		name string
		mod  func(*Seed)
		ok   bool
	}{
		{"default", func(*Seed) {}, true},
		{"sha256 8 digits 60s", func(s *Seed) { s.Algorithm, s.Digits, s.Period = "SHA256", 8, 60 }, true},
		{"short secret", func(s *Seed) { s.Secret = []byte("short") }, false},
		{"md5", func(s *Seed) { s.Algorithm = "MD5" }, false},
		{"7 digits", func(s *Seed) { s.Digits = 7 }, false},
		{"zero digits", func(s *Seed) { s.Digits = 0 }, false},
		{"zero period", func(s *Seed) { s.Period = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			if err := s.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestRemaining(t *testing.T) {
	s := DefaultSeed([]byte("12345678901234567890"))
	tests := []struct {
		unix int64
		want time.Duration
	}{{0, 30 * time.Second}, {1, 29 * time.Second}, {29, time.Second}, {30, 30 * time.Second}, {1234567890, 30 * time.Second}}
	for _, tc := range tests {
		if got := s.Remaining(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("Remaining(%d) = %v, want %v", tc.unix, got, tc.want)
		}
	}
}

// TestAgainstOathtool cross-checks codes with an independent implementation.
func TestAgainstOathtool(t *testing.T) {
	if _, err := exec.LookPath("oathtool"); err != nil {
		t.Skip("oathtool not installed (Debian package oathtool); CI installs it")
	}
	seed, err := ParseBase32Seed("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg            string
		digits, period int
	}{{"SHA1", 6, 30}, {"SHA256", 8, 60}, {"SHA512", 8, 30}, {"SHA1", 8, 45}}
	times := []int64{0, 59, 1234567890, 1700000000, 1799999999}
	for _, tc := range tests {
		for _, unix := range times {
			s := seed
			s.Algorithm, s.Digits, s.Period = tc.alg, tc.digits, tc.period
			at := time.Unix(unix, 0).UTC()
			got, err := s.Code(at)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("oathtool", "--totp="+strings.ToLower(tc.alg), "-b", s.Base32(),
				"--digits", strconv.Itoa(tc.digits), "--time-step-size", strconv.Itoa(tc.period)+"s",
				"--now", at.Format("2006-01-02 15:04:05 UTC")).CombinedOutput()
			if err != nil {
				t.Fatalf("oathtool: %v: %s", err, out)
			}
			if want := strings.TrimSpace(string(out)); got != want {
				t.Errorf("%s/%d/%ds at %d: got %s, oathtool %s", tc.alg, tc.digits, tc.period, unix, got, want)
			}
		}
	}
}
