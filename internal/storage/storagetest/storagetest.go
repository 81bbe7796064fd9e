// Package storagetest is the conformance suite of the storage contract:
// every backend runs Run against a real database of its kind and must pass
// it unchanged. The suite speaks only storage.Store — never SQL — so a
// behaviour it checks holds for every backend, and a behaviour no backend
// may differ in belongs here rather than in a backend's own tests.
//
// Every subtest gets a store of its own, with a manual clock starting at
// T0, so subtests run in parallel and move time without waiting. Races are
// real: goroutines released together (package together) call one store,
// and the subtest counts the winners.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/testclock"
)

// Open returns a new, empty store whose clock is now, and closes it at t's
// cleanup. The suite may have closed it already, so Close must allow a
// second call. Run calls Open once per subtest, from parallel subtests:
// make it cheap.
type Open func(t *testing.T, now func() time.Time) storage.Store

// T0 is where every subtest's clock starts. It is a whole millisecond:
// backends keep times to the millisecond or finer.
var T0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// Run runs every behaviour of the contract as a subtest of t, each on a
// store open makes for it.
func Run(t *testing.T, open Open) {
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.fn(t, newEnv(t, open))
				})
			}
		})
	}
}

// group is one part of the contract (one sub-interface of storage.Store,
// or the races across them).
type group struct {
	name  string
	cases []testCase
}

// testCase is one behaviour, checked on a fresh store.
type testCase struct {
	name string
	fn   func(t *testing.T, e *env)
}

func groups() []group {
	return []group{
		{"Users", userCases()},
		{"Cameras", cameraCases()},
		{"Lost", lostCases()},
		{"Fleet", fleetCases()},
		{"Import", importCases()},
		{"MFA", mfaCases()},
		{"Throttles", throttleCases()},
		{"Tokens", tokenCases()},
		{"OTP", otpCases()},
		{"OIDC", oidcCases()},
		{"RadiusClients", radiusCases()},
		{"Audit", auditCases()},
		{"AuditChain", chainCases()},
		{"Console", consoleCases()},
		{"Health", healthCases()},
		{"Close", closeCases()},
		{"Clocks", clockCases()},
		{"Races", raceCases()},
	}
}

// env is one subtest's store, its clock and a bounded context.
type env struct {
	s     storage.Store
	clock *testclock.Manual
	ctx   context.Context
}

// callTimeout bounds every store call of a subtest: a call that hangs
// fails the subtest instead of the whole test binary.
const callTimeout = 2 * time.Minute

func newEnv(t *testing.T, open Open) *env {
	clock := testclock.NewManual(T0)
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return &env{s: open(t, clock.Now), clock: clock, ctx: ctx}
}

// now is the store's clock.
func (e *env) now() time.Time { return e.clock.Now() }

// must fails t when err is not nil.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mustBe fails t unless err is (or wraps) want.
func mustBe(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// sameTime fails t unless got and want are the same instant.
func sameTime(t *testing.T, got, want time.Time, what string) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// addUser adds a user called name with password hash "hash:"+name.
func (e *env) addUser(t *testing.T, name string) {
	t.Helper()
	must(t, e.s.AddUser(e.ctx, model.User{Username: name, Email: name + "@pd.example", Role: "officer"}, "hash:"+name), "add user "+name)
}

// addCamera registers a Body 4 camera.
func (e *env) addCamera(t *testing.T, serial string) {
	t.Helper()
	must(t, e.s.AddCamera(e.ctx, serial, device.Body4, "pub:"+serial), "add camera "+serial)
}

// testSeed is a seed whose secret is 20 bytes of b.
func testSeed(b byte) device.Seed {
	return device.DefaultSeed(bytes.Repeat([]byte{b}, 20))
}

// sameSeed fails t unless got holds want's secret and parameters (and
// version).
func sameSeed(t *testing.T, got, want device.Seed, what string) {
	t.Helper()
	if !bytes.Equal(got.Secret, want.Secret) || got.Algorithm != want.Algorithm || got.Digits != want.Digits ||
		got.Period != want.Period || got.Version != want.Version {
		t.Fatalf("%s: seed %+v, want %+v", what, got, want)
	}
}

// command is the BuildCommand of the tests: the payload names the serial,
// the version and tag (which of several racing callers built it).
func command(serial, tag string) storage.BuildCommand {
	return func(v uint64) ([]byte, error) { return payload(serial, tag, v), nil }
}

func payload(serial, tag string, v uint64) []byte {
	return fmt.Appendf(nil, "%s %s v%d", serial, tag, v)
}

// startOp starts op on serial with seed s (nil for a wipe) and returns
// the version.
func (e *env) startOp(t *testing.T, serial string, op model.Op, s *device.Seed) uint64 {
	t.Helper()
	v, err := e.s.StartOp(e.ctx, serial, op, s, []byte("challenge"), command(serial, ""))
	must(t, err, fmt.Sprintf("%s %s", op, serial))
	return v
}

// provision registers serial and provisions it with seed s: it returns
// the version of the active seed.
func (e *env) provision(t *testing.T, serial string, s device.Seed) uint64 {
	t.Helper()
	e.addCamera(t, serial)
	v := e.startOp(t, serial, model.OpProvision, &s)
	op, err := e.s.CompleteOp(e.ctx, serial, v)
	must(t, err, "complete provision of "+serial)
	if op != model.OpProvision {
		t.Fatalf("complete provision of %s: op %q", serial, op)
	}
	return v
}

// within runs fn and fails t if it has not returned after d: what a
// deadlock looks like. The goroutine of a hung call is left behind.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, d)
	}
}
