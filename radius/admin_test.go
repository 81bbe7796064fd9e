package radius_test

import (
	"regexp"
	"testing"

	camradius "github.com/camotp/camotp/radius"
)

// TestNewSecretTypesAnywhere: a generated secret is letters and digits
// only. A base64url one started with "-" one time in 64, and radclient
// (getopt) then read the secret as options: TestRadclient failed in CI.
func TestNewSecretTypesAnywhere(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	seen := map[string]bool{}
	for range 2000 {
		s := camradius.NewSecret()
		if !valid.MatchString(s) {
			t.Fatalf("secret %q: want 26 characters of A–Z, 2–7", s)
		}
		if seen[s] {
			t.Fatalf("secret %q made twice", s)
		}
		seen[s] = true
	}
}
