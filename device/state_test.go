package device

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

func TestStateInitOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cam")
	st, err := InitState(dir, "BC4-0001", Body4)
	if err != nil {
		t.Fatal(err)
	}
	pub := st.Identity().Public()
	if pub.Serial != "BC4-0001" || pub.Model != Body4 {
		t.Fatalf("public identity = %+v", pub)
	}
	if _, err := camkey.ParsePublicKey(pub.PublicKey); err != nil {
		t.Fatalf("public key does not parse: %v", err)
	}
	for _, name := range []string{identityName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode = %v, want 0600", name, fi.Mode().Perm())
		}
	}
	_, err = InitState(dir, "BC4-0002", Body3)
	if !errors.Is(err, ErrStateExists) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second init: %v, want ErrStateExists naming %s", err, dir)
	}
	again, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Identity().Public() != pub {
		t.Fatalf("reopened identity %+v != %+v", again.Identity().Public(), pub)
	}
	if _, err := again.Seed(); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("fresh camera Seed() err = %v, want ErrNoSeed", err)
	}
}

func TestStateSeedVersions(t *testing.T) {
	dir := t.TempDir()
	st, err := InitState(dir, "SN", Body3)
	if err != nil {
		t.Fatal(err)
	}
	s1 := rfcSeed
	s1.Version = 5
	if err := st.StoreSeed(s1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, seedName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", fi, err)
	}
	for _, v := range []uint64{5, 4, 0} {
		stale := rfcSeed
		stale.Version = v
		if err := st.StoreSeed(stale); !errors.Is(err, ErrStaleVersion) {
			t.Fatalf("StoreSeed(version %d) = %v, want ErrStaleVersion", v, err)
		}
	}
	if err := st.WipeSeed(5); !errors.Is(err, ErrStaleVersion) {
		t.Fatalf("WipeSeed(5) = %v", err)
	}
	if err := st.WipeSeed(6); err != nil {
		t.Fatal(err)
	}
	re, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := re.Seed(); !errors.Is(err, ErrNoSeed) || re.Version() != 6 {
		t.Fatalf("after wipe and reopen: err %v version %d", err, re.Version())
	}
	// The wipe's version survives: an old delivery replayed later is refused.
	if err := re.StoreSeed(s1); !errors.Is(err, ErrStaleVersion) {
		t.Fatalf("replayed delivery after wipe: %v", err)
	}
	s2 := rfcSeed
	s2.Version = 7
	if err := re.StoreSeed(s2); err != nil {
		t.Fatal(err)
	}
	got, err := re.Seed()
	if err != nil || got.Version != 7 {
		t.Fatalf("seed after re-provision: %+v %v", got, err)
	}
	// No temp files left behind by the atomic writes.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temp file left: %s", e.Name())
		}
	}
}

func TestStateRejectsBadInput(t *testing.T) {
	tests := []struct {
		serial string
		model  Model
	}{{"", Body4}, {"has space", Body4}, {"a/b", Body4}, {"+x", Body4}, {strings.Repeat("x", 65), Body4}, {"OK1", "body5"}}
	for _, tc := range tests {
		if _, err := InitState(t.TempDir(), tc.serial, tc.model); err == nil {
			t.Errorf("InitState(%q, %q) succeeded", tc.serial, tc.model)
		}
	}
	if _, err := OpenState(t.TempDir()); err == nil || !strings.Contains(err.Error(), "camera init") {
		t.Errorf("OpenState of empty dir: %v", err)
	}
}

// A torn seed file is never produced: a crash leaves the old file and at most
// a temp file, which the next start (OpenState) removes without touching
// the real state.
func TestStateRemovesStaleTemp(t *testing.T) {
	dir := t.TempDir()
	st, err := InitState(dir, "SN", Body4)
	if err != nil {
		t.Fatal(err)
	}
	s := rfcSeed
	s.Version = 1
	if err := st.StoreSeed(s); err != nil {
		t.Fatal(err)
	}
	if err := st.PinServerKey([]byte("server-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, name := range []string{identityName, seedName, pinName} {
		if before[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate power cuts mid-write of the next seed and of the pin.
	stale := []string{"." + seedName + ".tmp-123", "." + seedName + ".tmp-4567", "." + pinName + ".tmp-9"}
	for _, name := range stale {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"version":2,"se`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Not ours: kept.
	other := filepath.Join(dir, "notes.tmp-1")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	re, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s after start: %v", name, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
	for name, want := range before {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed by start: %v\n%s\nwant\n%s", name, err, got, want)
		}
	}
	if got, err := re.Seed(); err != nil || got.Version != 1 || !bytes.Equal(got.Secret, s.Secret) {
		t.Fatalf("after simulated power cut: %+v %v", got, err)
	}
	if string(re.PinnedServerKey()) != "server-key-0123456789" {
		t.Fatalf("pin after start: %q", re.PinnedServerKey())
	}
	// The next write works as usual.
	s.Version = 2
	if err := re.StoreSeed(s); err != nil {
		t.Fatal(err)
	}
}

// TestSerialReservedPrefix: no camera may be named like camotp's own MQTT
// clients (a camera's client ID is its serial; camotp-server-NODE is a
// server node's link).
func TestSerialReservedPrefix(t *testing.T) {
	for _, sn := range []string{"camotp-server-n1", "CAMOTP-server", "Camotp-dynsec-1", "camotp-"} {
		if err := ValidateSerial(sn); err == nil {
			t.Errorf("serial %q accepted", sn)
		}
	}
	for _, sn := range []string{"camotp", "CAMOTP1-0001", "BC4-camotp-1"} {
		if err := ValidateSerial(sn); err != nil {
			t.Errorf("serial %q refused: %v", sn, err)
		}
	}
}

// A simulated clock drift is kept in the state and read back; a state
// without one has none; a corrupt one is an error, not a silent zero.
func TestSimulatedDrift(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cam")
	st, err := InitState(dir, "SIM-1", Body4)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.SimulatedDrift(); ok || err != nil {
		t.Fatalf("a new camera's drift: %v %v", ok, err)
	}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := ClockDrift{PPM: -37.5, Offset: 2 * time.Second, Since: since}
	if err := st.SetSimulatedDrift(want); err != nil {
		t.Fatal(err)
	}
	reopened, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := reopened.SimulatedDrift()
	if err != nil || !ok || got.PPM != want.PPM || got.Offset != want.Offset || !got.Since.Equal(since) {
		t.Fatalf("drift read back: %+v %v %v", got, ok, err)
	}
	// 1,000,000 s after since at -37.5 ppm: 37.5 s slow, plus the offset.
	at := since.Add(1e6 * time.Second)
	if now := got.Clock(FixedClock{T: at}).Now(); !now.Equal(at.Add(2*time.Second - 37500*time.Millisecond)) {
		t.Fatalf("drifted clock: %v", now)
	}
	if err := os.WriteFile(filepath.Join(dir, clockName), []byte(`{"ppm":1e9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reopened.SimulatedDrift(); err == nil {
		t.Fatal("an out-of-range drift was accepted")
	}
}
