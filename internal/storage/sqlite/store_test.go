package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/device"
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

// A camera reported lost just after a rotation keeps no copy of the seed
// the rotation replaced (kept a while for codes read before the switch):
// the database holds no dead seed of a camera in a thief's hands.
func TestReportLostDropsTheReplacedSeed(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	build := func(v uint64) ([]byte, error) { return []byte("cmd"), nil }
	if err := s.AddCamera(ctx, "CAM-1", device.Body4, "cam1:key"); err != nil {
		t.Fatal(err)
	}
	seed := device.Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30}
	for _, op := range []model.Op{model.OpProvision, model.OpRotate} {
		v, err := s.StartOp(ctx, "CAM-1", op, &seed, []byte("challenge"), build)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteOp(ctx, "CAM-1", v); err != nil {
			t.Fatal(err)
		}
	}
	kept := func() bool {
		var n int
		if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM cameras WHERE serial = 'CAM-1' AND prev_seed IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if !kept() {
		t.Fatal("no replaced seed kept after the rotation: the test proves nothing")
	}
	if _, err := s.ReportLost(ctx, "CAM-1", model.LostReport{Actor: "sam", Reason: "stolen"}, []byte("c"), build); err != nil {
		t.Fatal(err)
	}
	if kept() {
		t.Fatal("the replaced seed is still in the database after the report")
	}
}
