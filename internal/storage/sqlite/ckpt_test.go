package sqlite

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestCheckpointerBoundsWAL: the writer never checkpoints; the checkpointer
// must, or the WAL grows with every commit.
func TestCheckpointerBoundsWAL(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var sizes []int64
	for round := range 4 {
		for i := range 500 {
			if _, err := s.AcceptStep(ctx, "x", 1, int64(round*500+i+1), 0); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * checkpointInterval)
		fi, err := os.Stat(s.path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
	}
	// 500 commits append ≥ 500 pages (4 KiB each); without checkpoints the
	// WAL would be past 8 MB by now.
	if last := sizes[len(sizes)-1]; last > 4<<20 {
		t.Fatalf("WAL sizes after each round %v: not checkpointed", sizes)
	}
	t.Logf("WAL sizes %v", sizes)
}
