package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/storagetest"
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

// TestAuditTampering edits the database file directly, with a connection
// of its own, as someone with the file would; VerifyAudit finds each edit.
func TestAuditTampering(t *testing.T) {
	storagetest.RunTamper(t, func(t *testing.T) storagetest.Tampered {
		key, err := masterkey.New(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "camotp.db")
		s, err := Open(context.Background(), path, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		reopen := func(t *testing.T) storage.Store {
			s.Close()
			s2, err := Open(context.Background(), path, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s2.Close() })
			return s2
		}
		return storagetest.Tampered{Store: s, Reopen: reopen, Exec: func(t *testing.T, q string) {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}}
	})
}
