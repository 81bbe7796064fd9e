package auditsyslog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/camotp/camotp/internal/atomicfile"
)

// CursorFile is the cursor's name in the data directory.
const CursorFile = "audit-syslog.cursor"

// maxCursorFile bounds the cursor file read: a few bytes per chain.
const maxCursorFile = 64 << 10

// maxChains bounds the chains a cursor may name.
const maxChains = 1024

// Cursor is, per hash chain, the last position (seq) the receiver at
// Target is known to have read. Rows after it are sent next.
type Cursor struct {
	// Target is the receiver the positions are of (its URL): another
	// receiver starts from the beginning of the log.
	Target string
	// Seq is the last confirmed position by chain (missing: none).
	Seq map[int]int64
	// MAC is, by chain, the MAC of the row at Seq when it was sent
	// (missing: not known, a cursor of an older camotp): a row there
	// with another MAC, or none, means the chain was cut back or
	// rewritten in the database since.
	MAC map[int][]byte
}

// cursorJSON is the file's form.
type cursorJSON struct {
	Target string            `json:"target"`
	Chains map[string]int64  `json:"chains"`
	MACs   map[string]string `json:"macs,omitempty"`
}

// maxMAC bounds a MAC a cursor holds (the chains' are 32 bytes).
const maxMAC = 64

// ParseCursor reads a cursor file's content.
func ParseCursor(data []byte) (Cursor, error) {
	if len(data) > maxCursorFile {
		return Cursor{}, fmt.Errorf("cursor: %d bytes, more than %d", len(data), maxCursorFile)
	}
	var cj cursorJSON
	if err := json.Unmarshal(data, &cj); err != nil {
		return Cursor{}, fmt.Errorf("cursor: %w", err)
	}
	if len(cj.Chains) > maxChains {
		return Cursor{}, fmt.Errorf("cursor: %d chains, more than %d", len(cj.Chains), maxChains)
	}
	c := Cursor{Target: cj.Target, Seq: make(map[int]int64, len(cj.Chains))}
	for k, v := range cj.Chains {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 || n >= maxChains || strconv.Itoa(n) != k {
			return Cursor{}, fmt.Errorf("cursor: chain %q is not a chain number", k)
		}
		if v < 0 {
			return Cursor{}, fmt.Errorf("cursor: chain %d at position %d", n, v)
		}
		c.Seq[n] = v
	}
	for k, v := range cj.MACs {
		n, err := strconv.Atoi(k)
		if _, at := c.Seq[n]; err != nil || strconv.Itoa(n) != k || !at {
			return Cursor{}, fmt.Errorf("cursor: MAC of chain %q, which has no position", k)
		}
		mac, err := hex.DecodeString(v)
		if err != nil || len(mac) == 0 || len(mac) > maxMAC {
			return Cursor{}, fmt.Errorf("cursor: MAC of chain %d is not 1 to %d bytes of hex", n, maxMAC)
		}
		if c.MAC == nil {
			c.MAC = make(map[int][]byte, len(cj.MACs))
		}
		c.MAC[n] = mac
	}
	return c, nil
}

// Marshal is the cursor as ParseCursor reads it.
func (c Cursor) Marshal() []byte {
	cj := cursorJSON{Target: c.Target, Chains: make(map[string]int64, len(c.Seq))}
	for k, v := range c.Seq {
		cj.Chains[strconv.Itoa(k)] = v
	}
	for k, v := range c.MAC {
		if cj.MACs == nil {
			cj.MACs = make(map[string]string, len(c.MAC))
		}
		cj.MACs[strconv.Itoa(k)] = hex.EncodeToString(v)
	}
	data, _ := json.Marshal(cj) // strings and numbers only
	return append(data, '\n')
}

// LoadCursor reads the cursor file at path; a missing file is an empty
// cursor for no target.
func LoadCursor(path string) (Cursor, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Cursor{Seq: map[int]int64{}}, nil
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("audit syslog cursor: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCursorFile+1))
	if err != nil {
		return Cursor{}, fmt.Errorf("audit syslog cursor %s: %w", path, err)
	}
	c, err := ParseCursor(data)
	if err != nil {
		return Cursor{}, fmt.Errorf("%s: %w (delete it to send the whole audit log again)", path, err)
	}
	return c, nil
}

// SaveCursor writes c to path atomically, mode 0600.
func SaveCursor(path string, c Cursor) error {
	if err := atomicfile.WriteFile(path, c.Marshal(), 0o600); err != nil {
		return fmt.Errorf("audit syslog cursor: %w", err)
	}
	return nil
}
