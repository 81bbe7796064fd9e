package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The sign-in benchmark runs end to end on a small fleet: every sign-in
// (real argon2id password step, camera code step) passes on the real
// server and on the no-op handler, at each concurrency. No timing is
// asserted: the figures are for the command's reader.
func TestSignInBenchmarkRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions a fleet")
	}
	res, err := SignIn(context.Background(), SignInConfig{Dir: t.TempDir(), Officers: 12, Concurrency: []int{1, 3}, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Levels) != 2 {
		t.Fatalf("levels %+v", res.Levels)
	}
	for _, l := range res.Levels {
		if l.Real.Verifications < 1 || l.Noop.Verifications < 1 {
			t.Fatalf("%d clients: nothing measured: %+v", l.Clients, l)
		}
	}
	if s := res.String(); !strings.Contains(s, "real / no-op") {
		t.Fatalf("report:\n%s", s)
	}
	t.Log("\n" + res.String())
}
