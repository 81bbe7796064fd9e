package signin

import (
	"context"
	"encoding/base32"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/storage/sqlite"
)

func newStore(t testing.TB, dir string, now func() time.Time) *sqlite.Store {
	t.Helper()
	key, err := masterkey.Load(filepath.Join(dir, "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "camotp.db"), key, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var testSeed = device.Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30, Version: 1}

// base is the start of a step.
var base = time.Unix(1234567890, 0)

func codeAt(t testing.TB, seed device.Seed, offsetSteps int64) string {
	c, err := seed.Code(base.Add(time.Duration(offsetSteps) * 30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckerWindowEdges(t *testing.T) {
	tests := []struct {
		name   string
		offset int64
		at     time.Duration // verifier time after base
		want   Outcome
	}{
		{"current step", 0, 0, Accepted},
		{"current step, end of step", 0, 29 * time.Second, Accepted},
		{"one step behind", -1, 0, Accepted},
		{"one step ahead", 1, 0, Accepted},
		{"two steps behind", -2, 0, ClockOff},
		{"two steps ahead", 2, 0, ClockOff},
		{"ten steps ahead", 10, 0, ClockOff},
		{"eleven steps ahead", 11, 0, Invalid},
		{"eleven steps behind", -11, 0, Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{Store: newStore(t, t.TempDir(), nil), Window: 1, ResyncRange: 10}
			res, err := c.Check(context.Background(), "cam:A", testSeed, codeAt(t, testSeed, tc.offset), base.Add(tc.at))
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want {
				t.Fatalf("outcome %v, want %v", res.Outcome, tc.want)
			}
		})
	}
}

func TestCheckerBadCodes(t *testing.T) {
	c := &Checker{Store: newStore(t, t.TempDir(), nil)}
	good := codeAt(t, testSeed, 0)
	for _, code := range []string{"", "12345", "1234567", "abcdef", " " + good[1:], good + " ", "０１２３４５"} {
		res, err := c.Check(context.Background(), "cam:A", testSeed, code, base)
		if err != nil || res.Outcome != Invalid {
			t.Errorf("code %q: %v %v, want invalid", code, res.Outcome, err)
		}
	}
}

func TestCheckerReplay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := &Checker{Store: newStore(t, dir, nil)}
	steps := []struct {
		offset int64
		want   Outcome
	}{
		{0, Accepted},
		{0, Replayed},  // same code again
		{-1, Replayed}, // an older code, still inside the window
		{1, Accepted},  // the next code
		{0, Replayed},
	}
	for i, s := range steps {
		res, err := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, s.offset), base)
		if err != nil || res.Outcome != s.want {
			t.Fatalf("step %d (offset %d): %v %v, want %v", i, s.offset, res.Outcome, err, s.want)
		}
	}
	// Durable: a new store on the same file still refuses the used code.
	c2 := &Checker{Store: newStore(t, dir, nil)}
	if res, _ := c2.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 1), base); res.Outcome != Replayed {
		t.Fatalf("after reopen: %v, want replayed", res.Outcome)
	}
	// Another camera's record is separate; a new seed version starts fresh.
	if res, _ := c2.Check(ctx, "cam:B", testSeed, codeAt(t, testSeed, 0), base); res.Outcome != Accepted {
		t.Fatalf("other camera: %v", res.Outcome)
	}
	rotated := testSeed
	rotated.Version = 2
	if res, _ := c2.Check(ctx, "cam:A", rotated, codeAt(t, rotated, 0), base); res.Outcome != Accepted {
		t.Fatalf("new seed version: %v", res.Outcome)
	}
}

func TestCheckerConcurrentUseOfOneCode(t *testing.T) {
	st := newStore(t, t.TempDir(), nil)
	c := &Checker{Store: st}
	code := codeAt(t, testSeed, 0)
	var wg sync.WaitGroup
	results := make(chan Outcome, 8)
	for range 8 {
		wg.Go(func() {
			res, err := c.Check(context.Background(), "cam:A", testSeed, code, base)
			if err != nil {
				t.Error(err)
			}
			results <- res.Outcome
		})
	}
	wg.Wait()
	close(results)
	accepted := 0
	for o := range results {
		if o == Accepted {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("one code accepted %d times", accepted)
	}
}

func TestCheckerDriftLearning(t *testing.T) {
	ctx := context.Background()
	c := &Checker{Store: newStore(t, t.TempDir(), nil)}
	// The camera runs one step fast: accepted at +1, drift learnt.
	res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 1), base)
	if res.Outcome != Accepted || res.Offset != 1 {
		t.Fatalf("first: %+v", res)
	}
	// It drifts further: +2 from the verifier's clock is inside the window
	// centred on the learnt drift.
	later := base.Add(5 * time.Minute) // 10 steps later
	res, _ = c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 12), later)
	if res.Outcome != Accepted || res.Offset != 2 {
		t.Fatalf("second: %+v", res)
	}
	// Centred on +2 now: +3 is accepted, the verifier-clock step (0) is not.
	evenLater := later.Add(5 * time.Minute)
	if res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 23), evenLater); res.Outcome != Accepted {
		t.Fatalf("third: %+v", res)
	}
}

func TestCheckerResync(t *testing.T) {
	ctx := context.Background()
	c := &Checker{Store: newStore(t, t.TempDir(), nil)}
	// A camera 5 steps fast: first code reported, not accepted.
	res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 5), base)
	if res.Outcome != ClockOff || res.Offset != 5 {
		t.Fatalf("first: %+v", res)
	}
	// The same code again does not confirm (it must be a later one).
	if res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 5), base.Add(10*time.Second)); res.Outcome != ClockOff {
		t.Fatalf("same code: %+v", res)
	}
	// A code at another offset replaces the candidate, it does not confirm.
	if res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 7), base.Add(10*time.Second)); res.Outcome != ClockOff || res.Offset != 7 {
		t.Fatalf("other offset: %+v", res)
	}
	// The next code at the same offset (+7) confirms: resynced and accepted.
	res, _ = c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 8), base.Add(40*time.Second))
	if res.Outcome != Accepted || !res.Resynced || res.Offset != 7 {
		t.Fatalf("confirm: %+v", res)
	}
	// From now on the window is centred on +7.
	if res, _ := c.Check(ctx, "cam:A", testSeed, codeAt(t, testSeed, 10), base.Add(90*time.Second)); res.Outcome != Accepted {
		t.Fatalf("after resync: %+v", res)
	}
}

// TestCheckerCodeCollision: two neighbouring steps of a seed can show the
// same code. After the earlier step was used, the same digits typed in the
// next step are that step's fresh code and must be accepted — once.
// (The bench found this: one failure in about a million sign-ins.)
func TestCheckerCodeCollision(t *testing.T) {
	// Found by search: HMAC-SHA1 codes of steps 56666666 and 56666667 are both 098165.
	secret, err := base32.StdEncoding.DecodeString("MNQW233UOAWWG33MNRUQAAAAAAABKWYOGA======")
	if err != nil {
		t.Fatal(err)
	}
	seed := device.Seed{Secret: secret, Algorithm: "SHA1", Digits: 6, Period: 30, Version: 1}
	first, second := time.Unix(56666666*30, 0), time.Unix(56666667*30, 0)
	for _, at := range []time.Time{first, second} {
		if c, _ := seed.Code(at); c != "098165" {
			t.Fatalf("code at %v = %s; the fixture is wrong", at, c)
		}
	}
	c := &Checker{Store: newStore(t, t.TempDir(), nil)}
	ctx := context.Background()
	for i, tc := range []struct {
		at         time.Time
		want       Outcome
		wantOffset int64
	}{
		{first, Accepted, 0},
		{second, Accepted, 0}, // matches the used step too, and its own fresh one
		{second, Replayed, 0},
		{second.Add(30 * time.Second), Replayed, -1},
	} {
		res, err := c.Check(ctx, "cam:X", seed, "098165", tc.at)
		if err != nil || res.Outcome != tc.want || res.Offset != tc.wantOffset {
			t.Fatalf("check %d: %v offset %d (%v), want %v offset %d", i, res.Outcome, res.Offset, err, tc.want, tc.wantOffset)
		}
	}
}
