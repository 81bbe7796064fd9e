package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/storagetest"
)

// TestConformance runs the storage contract's suite on PostgreSQL, each
// subtest on a database of its own.
func TestConformance(t *testing.T) {
	template := freshURL(t)
	s := openURL(t, template, nil) // migrate it once
	s.Close()
	tmpl := dbName(t, template)
	storagetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		u := freshFrom(t, tmpl)
		s, err := Open(context.Background(), u, testKey(t), now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
