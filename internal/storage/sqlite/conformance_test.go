package sqlite

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/storagetest"
)

// TestConformance runs the storage contract's suite on SQLite files, one
// per subtest.
func TestConformance(t *testing.T) {
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	// Each subtest's file starts as a copy of one migrated database:
	// migrating is most of what an open costs (several times more under
	// the race detector), and the migrations have tests of their own.
	template := filepath.Join(t.TempDir(), "template.db")
	s, err := Open(t.Context(), template, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	migrated, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		path := filepath.Join(t.TempDir(), "camotp.db")
		if err := os.WriteFile(path, migrated, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.Context(), path, key, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
