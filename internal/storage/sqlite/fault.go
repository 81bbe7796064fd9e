package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// classify turns the database errors that mean "storage unavailable" into
// an *UnavailableError; other errors are returned as they are.
func classify(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	reason := ""
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL:
		reason = "disk full"
	case sqlite3.SQLITE_READONLY:
		reason = "read-only"
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		reason = "I/O error"
	default:
		return err
	}
	return &storage.UnavailableError{Reason: reason, Err: err}
}

// probeSize is how much the write probe asks of the file system: enough
// that a disk without room for the database to grow says so.
const probeSize = 64 << 10

// ProbeWrite tells whether the database can take writes now: it writes
// and syncs probeSize bytes to a scratch file beside the database (SQLite
// reuses WAL space it already has, so a tiny database write can succeed
// for a long time on a full disk), then commits one tiny write. A full
// disk, a read-only file system or an I/O error fails it with an
// *UnavailableError.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := probeFile(s.path + ".probe"); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	_, err := s.exec(ctx, `INSERT INTO health (id, probed_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET probed_at = excluded.probed_at`,
		s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// probeFile writes, syncs and removes a scratch file of probeSize bytes.
func probeFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(make([]byte, probeSize))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	os.Remove(path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &storage.UnavailableError{Reason: "disk full", Err: err}
	case errors.Is(err, syscall.EROFS), errors.Is(err, os.ErrPermission):
		return &storage.UnavailableError{Reason: "read-only", Err: err}
	}
	return &storage.UnavailableError{Reason: "I/O error", Err: err}
}

// SetAuditFailureHook sets fn to be told of every audit entry that could
// not be written (to log and count it); call it before serving.
func (s *Store) SetAuditFailureHook(fn func(e model.AuditEntry, err error)) { s.auditFailed = fn }

// AuditFailures is the number of audit entries that could not be written.
func (s *Store) AuditFailures() uint64 { return s.auditFailures.Load() }
