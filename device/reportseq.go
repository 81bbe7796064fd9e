package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/camotp/camotp/internal/atomicfile"
)

// reportSeqName holds the clock report counter's reservation.
const reportSeqName = "report-seq.json"

// reportSeqBlock is how many counter values one write reserves: a camera
// writes its state once per this many reports, and after a restart starts
// past whatever it may have used.
const reportSeqBlock = 256

// reportSeq is the counter the camera's clock reports carry: values
// handed out from a block whose end is on disk before any is used.
type reportSeq struct {
	mu       sync.Mutex
	loaded   bool
	next     uint64 // the next value to hand out
	reserved uint64 // values below it are reserved on disk
}

// NextReportSeq returns the next clock report counter: above every value
// returned before, by this process or an earlier one on the same state
// directory (the counter is reserved on disk in blocks, 0600).
func (s *State) NextReportSeq() (uint64, error) {
	c := &s.seq
	c.mu.Lock()
	defer c.mu.Unlock()
	path := filepath.Join(s.dir, reportSeqName)
	if !c.loaded {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.next = 1
		case err != nil:
			return 0, fmt.Errorf("read %s: %w", reportSeqName, err)
		default:
			var f struct {
				Reserved uint64 `json:"reserved"`
			}
			if err := json.Unmarshal(data, &f); err != nil || f.Reserved == 0 || f.Reserved > 1<<62 {
				return 0, fmt.Errorf("%s in %s: malformed", reportSeqName, s.dir)
			}
			c.next = f.Reserved
		}
		c.reserved, c.loaded = c.next, true
	}
	if c.next >= c.reserved {
		end := c.next + reportSeqBlock
		data, _ := json.Marshal(struct {
			Reserved uint64 `json:"reserved"`
		}{end})
		if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
			return 0, fmt.Errorf("reserve clock report counters: %w", err)
		}
		c.reserved = end
	}
	v := c.next
	c.next++
	return v, nil
}
