// Package recordsqa is a records system's own test module: it signs
// officers in through camotp with the github.com/camotp/camotp/qa package,
// as another team's CI would.
package recordsqa

import (
	"net/http"
	"testing"

	"github.com/camotp/camotp/qa"
)

// An officer signs in to the records system with the code on the camera
// assigned to them; a camera assigned to someone else does not let them in.
func TestOfficerSignsIn(t *testing.T) {
	camotp := qa.Start(t)
	camotp.AddOfficer(t, "jdoe", "correct horse battery")
	camotp.AddOfficer(t, "asmith", "another long password")
	own := camotp.AddCamera(t, "BC4-0001", "body4", "jdoe")
	other := camotp.AddCamera(t, "BC3-0002", "body3", "asmith")

	if session := camotp.SignIn(t, "jdoe", "correct horse battery", own); session == "" {
		t.Fatal("no session")
	}
	status, login := camotp.Login(t, "jdoe", "correct horse battery")
	if status != http.StatusOK {
		t.Fatalf("password step: %d", status)
	}
	if status, ans := camotp.Verify(t, login.Token, other.Code(t)); status != http.StatusUnauthorized {
		t.Fatalf("another officer's camera code: %d %v, want 401", status, ans)
	}
}
