package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
)

// BenchmarkCameraClocks reads the clock records of a 10,000-camera fleet
// (what /metrics reads) and those of a 200-row page of the console's
// listing.
func BenchmarkCameraClocks(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	key, err := masterkey.Load(filepath.Join(dir, "master.key"), "")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, filepath.Join(dir, "c.db"), key, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for i := range 10000 {
		sn := fmt.Sprintf("BC4-%05d", i)
		if err := s.AddCamera(ctx, sn, device.Body4, "pub"); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.RecordClock(ctx, model.ClockReport{Serial: sn, Seq: 1, Offset: time.Duration(i) * time.Millisecond, At: now}, 20*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	page := make([]string, 200)
	for i := range page {
		page[i] = fmt.Sprintf("BC4-%05d", 5000+i*7)
	}
	b.Run("all", func(b *testing.B) {
		for range b.N {
			if k, err := s.CameraClocks(ctx); err != nil || len(k) != 10000 {
				b.Fatal(len(k), err)
			}
		}
	})
	b.Run("page of 200", func(b *testing.B) {
		for range b.N {
			if k, err := s.CameraClocksOf(ctx, page); err != nil || len(k) != 200 {
				b.Fatal(len(k), err)
			}
		}
	})
}
