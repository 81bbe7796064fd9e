package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/camotp/camotp/internal/atomicfile"
	"github.com/camotp/camotp/internal/camkey"
)

// SeedSource gives the camera its current seed; ErrNoSeed when it has none.
type SeedSource interface {
	Seed() (Seed, error)
}

// ErrStaleVersion is returned when a seed delivery or wipe carries a
// provisioning version that is not newer than the one already applied.
var ErrStaleVersion = errors.New("provisioning version is not newer than the applied one")

// ErrStateExists is returned by InitState for a directory that already holds a camera.
var ErrStateExists = errors.New("camera state already exists")

var serialRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidateSerial checks a serial number: 1 to 64 letters, digits, '-' or '_',
// starting with a letter or digit (it becomes part of MQTT topics).
func ValidateSerial(s string) error {
	if !serialRE.MatchString(s) {
		return fmt.Errorf("invalid serial %q: use 1-64 letters, digits, '-' or '_'", s)
	}
	if len(s) >= len(ReservedPrefix) && strings.EqualFold(s[:len(ReservedPrefix)], ReservedPrefix) {
		// A camera's MQTT client ID is its serial: one named like the
		// server's links (camotp-server-NODE) could take a node's place
		// on the broker.
		return fmt.Errorf("invalid serial %q: serials starting with %q are reserved for camotp's own MQTT clients", s, ReservedPrefix)
	}
	return nil
}

// ReservedPrefix starts the MQTT client IDs of camotp's own clients (the
// server's links, the dynamic-security admin); no serial may start with it,
// in any case.
const ReservedPrefix = "camotp-"

// Identity is who a camera is: serial, model and its private keys.
type Identity struct {
	Serial string
	Model  Model
	Key    camkey.PrivateKey
}

// PublicIdentity is what an admin registers for a camera.
type PublicIdentity struct {
	Serial    string `json:"serial"`
	Model     Model  `json:"model"`
	PublicKey string `json:"publicKey"`
}

// Public returns the identity without private keys.
func (id Identity) Public() PublicIdentity {
	return PublicIdentity{Serial: id.Serial, Model: id.Model, PublicKey: id.Key.Public().String()}
}

type identityFile struct {
	Serial     string `json:"serial"`
	Model      Model  `json:"model"`
	PrivateKey string `json:"privateKey"`
}

type seedFile struct {
	Version uint64 `json:"version"`
	Seed    *Seed  `json:"seed,omitempty"`
}

const (
	identityName = "identity.json"
	seedName     = "seed.json"
	pinName      = "server-key.json"
	clockName    = "clock.json"
)

// ClockDrift is a simulated camera's clock: off by Offset and running PPM
// parts per million fast (negative: slow) since Since — what a real
// camera's crystal does between two syncs. A simulated fleet gives each
// camera its own (fleet-sim --clock-ppm-spread); camera run and camera
// code apply it unless told another clock.
type ClockDrift struct {
	PPM    float64       `json:"ppm"`
	Offset time.Duration `json:"offset"`
	Since  time.Time     `json:"since"`
}

// Clock is base as the drift makes it run.
func (d ClockDrift) Clock(base Clock) Clock {
	return DriftClock{Base: base, Offset: d.Offset, PPM: d.PPM, Epoch: d.Since}
}

// State is a camera's state directory: identity.json (serial, model, private
// keys) and seed.json (the seed and the last applied provisioning version).
// Files are 0600 and every write is atomic. State is a SeedSource and is safe
// for concurrent use.
type State struct {
	dir string
	id  Identity

	mu      sync.RWMutex
	version uint64
	seed    *Seed
	pin     []byte

	seq reportSeq // the clock report counter (reportseq.go)
}

// InitState creates a new camera in dir (created 0700 if missing) with a
// fresh identity key pair. It refuses a dir that already holds a camera.
func InitState(dir, serial string, model Model) (*State, error) {
	if err := ValidateSerial(serial); err != nil {
		return nil, err
	}
	if _, err := ParseModel(string(model)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, identityName)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w in %s (refusing to overwrite it)", ErrStateExists, dir)
	}
	key, err := camkey.Generate()
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(identityFile{Serial: serial, Model: model, PrivateKey: key.MarshalPrivate()}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	// O_EXCL closes the race between two concurrent inits of the same dir.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w in %s (refusing to overwrite it)", ErrStateExists, dir)
		}
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", path, err)
	}
	return &State{dir: dir, id: Identity{Serial: serial, Model: model, Key: key}}, nil
}

// OpenState loads the camera in dir (the camera's start). It removes the
// temporary files that writes interrupted by a crash left behind, so a
// camera directory must be opened by one process at a time.
func OpenState(dir string) (*State, error) {
	var files stateFiles
	var err error
	files.identity, err = os.ReadFile(filepath.Join(dir, identityName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no camera in %s: run 'camotp camera init --state %s' first", dir, dir)
		}
		return nil, fmt.Errorf("read camera identity: %w", err)
	}
	if files.seed, files.hasSeed, err = readOptional(filepath.Join(dir, seedName)); err != nil {
		return nil, fmt.Errorf("read camera seed: %w", err)
	}
	if files.pin, files.hasPin, err = readOptional(filepath.Join(dir, pinName)); err != nil {
		return nil, fmt.Errorf("read pinned server key: %w", err)
	}
	s, err := parseState(dir, files)
	if err != nil {
		return nil, err
	}
	// Temp files of writes a crash interrupted: the real files are intact
	// (every write is atomic), the leftovers only take space.
	for _, name := range []string{seedName, pinName} {
		if _, err := atomicfile.RemoveStale(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("open camera state: %w", err)
		}
	}
	return s, nil
}

// stateFiles is the content of a camera's state files.
type stateFiles struct {
	identity        []byte
	seed, pin       []byte
	hasSeed, hasPin bool // the file exists
}

// readOptional reads a file that may not exist.
func readOptional(path string) (data []byte, exists bool, err error) {
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// parseState checks and decodes the state files of the camera in dir: the
// files are the camera's own, but a corrupt or tampered one must not give
// a camera with a bad serial (it is part of MQTT topics) or an unusable seed.
func parseState(dir string, files stateFiles) (*State, error) {
	var idf identityFile
	if err := json.Unmarshal(files.identity, &idf); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, identityName), err)
	}
	if err := ValidateSerial(idf.Serial); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, identityName), err)
	}
	model, err := ParseModel(string(idf.Model))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, identityName), err)
	}
	key, err := camkey.ParsePrivate(idf.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, identityName), err)
	}
	s := &State{dir: dir, id: Identity{Serial: idf.Serial, Model: model, Key: key}}
	if files.hasSeed {
		var sf seedFile
		if err := json.Unmarshal(files.seed, &sf); err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, seedName), err)
		}
		if sf.Seed != nil {
			if err := sf.Seed.Validate(); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(dir, seedName), err)
			}
		}
		s.version, s.seed = sf.Version, sf.Seed
	}
	if files.hasPin {
		var pf struct {
			ServerKey []byte `json:"serverKey"`
		}
		if err := json.Unmarshal(files.pin, &pf); err != nil || len(pf.ServerKey) == 0 {
			return nil, fmt.Errorf("parse %s: malformed", filepath.Join(dir, pinName))
		}
		s.pin = pf.ServerKey
	}
	return s, nil
}

// PinnedServerKey returns the provisioning server key this camera trusts, or
// nil before its first delivery.
func (s *State) PinnedServerKey() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pin
}

// PinServerKey records the provisioning server key on first use; later
// commands sealed by another key are refused. Pinning a second, different
// key is an error.
func (s *State) PinServerKey(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pin != nil {
		if string(s.pin) != string(key) {
			return errors.New("camera is pinned to another provisioning server key")
		}
		return nil
	}
	data, err := json.Marshal(struct {
		ServerKey []byte `json:"serverKey"`
	}{key})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, pinName), data, 0o600); err != nil {
		return fmt.Errorf("pin server key: %w", err)
	}
	s.pin = append([]byte(nil), key...)
	return nil
}

// SimulatedDrift is the camera's simulated clock drift; false when it has
// none (a real camera, or a simulated one that keeps time).
func (s *State) SimulatedDrift() (ClockDrift, bool, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, clockName))
	if errors.Is(err, fs.ErrNotExist) {
		return ClockDrift{}, false, nil
	}
	if err != nil {
		return ClockDrift{}, false, fmt.Errorf("read %s: %w", clockName, err)
	}
	var d ClockDrift
	if err := json.Unmarshal(data, &d); err != nil {
		return ClockDrift{}, false, fmt.Errorf("%s in %s: %w", clockName, s.dir, err)
	}
	if math.IsNaN(d.PPM) || math.Abs(d.PPM) > 1e6 {
		return ClockDrift{}, false, fmt.Errorf("%s in %s: ppm %v out of range", clockName, s.dir, d.PPM)
	}
	return d, true, nil
}

// SetSimulatedDrift gives the camera a simulated clock drift (clock.json).
func (s *State) SetSimulatedDrift(d ClockDrift) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode clock drift: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, clockName), data, 0o600); err != nil {
		return fmt.Errorf("store clock drift: %w", err)
	}
	return nil
}

// Dir is the state directory.
func (s *State) Dir() string { return s.dir }

// Identity returns the camera identity.
func (s *State) Identity() Identity { return s.id }

// Seed returns the stored seed, or ErrNoSeed.
func (s *State) Seed() (Seed, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.seed == nil {
		return Seed{}, ErrNoSeed
	}
	return *s.seed, nil
}

// Version is the last applied provisioning version (0 before any).
func (s *State) Version() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// StoreSeed replaces the seed atomically. seed.Version must be newer than
// the last applied version, else ErrStaleVersion.
func (s *State) StoreSeed(seed Seed) error {
	if err := seed.Validate(); err != nil {
		return err
	}
	return s.write(seed.Version, &seed)
}

// WipeSeed erases the seed at provisioning version v (newer than the last).
func (s *State) WipeSeed(v uint64) error { return s.write(v, nil) }

func (s *State) write(v uint64, seed *Seed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v <= s.version {
		return fmt.Errorf("%w (got %d, have %d)", ErrStaleVersion, v, s.version)
	}
	data, err := json.Marshal(seedFile{Version: v, Seed: seed})
	if err != nil {
		return fmt.Errorf("encode seed: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, seedName), data, 0o600); err != nil {
		return fmt.Errorf("store seed: %w", err)
	}
	s.version, s.seed = v, seed
	return nil
}

// TestSeed is a SeedSource that always returns one seed: factory test mode.
type TestSeed struct{ S Seed }

// Seed returns the test seed.
func (t TestSeed) Seed() (Seed, error) { return t.S, nil }
