package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
)

// The behaviours of the storage contract are checked by the conformance
// suite (TestConformance); the tests of this package are about SQLite:
// files, checkpoints, what a row holds at rest.

func openTest(t *testing.T) *Store {
	t.Helper()
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The database, its WAL and shared-memory files are readable by the
// server's user only, also when an older installation left them wider.
func TestFileModes(t *testing.T) {
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "modes.db")
	for round := range 2 {
		s, err := Open(context.Background(), path, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Audit(context.Background(), model.AuditEntry{Actor: "t", Action: "a", Subject: "s", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("round %d: %s has mode %v, want 0600", round, filepath.Base(f), fi.Mode().Perm())
			}
		}
		s.Close()
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			os.Chmod(f, 0o644) // as an older camotp left them
		}
	}
}
