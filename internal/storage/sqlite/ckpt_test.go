package sqlite

import (
	"context"
	"fmt"
	"os"
	"sync"
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

// TestWALStartsOverUnderSteadyWrites: with writes that never pause (and
// reads beside them), the checkpointer alone never catches up with the
// writer, and the WAL would grow with every commit; the writer helps it,
// and the WAL starts over.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 6 {
		wg.Go(func() {
			subject := fmt.Sprintf("w%d", r)
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r < 2 {
					s.OTPState(ctx, subject) // a reader
					continue
				}
				if _, err := s.AcceptStep(ctx, subject, 1, i, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(12 * checkpointInterval)
	close(stop)
	wg.Wait()
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	written := int64(s.WriterStats().Pages) * (4096 + 24)
	if written < 4*walRestartFrames*4096 {
		t.Skipf("only %d KiB written in %v: too few to tell", written>>10, 12*checkpointInterval)
	}
	// A WAL that never starts over holds every frame written.
	if fi.Size()+walRestartFrames*4096 > written {
		t.Fatalf("WAL of %d KiB after %d KiB of frames written: it did not start over", fi.Size()>>10, written>>10)
	}
	t.Logf("WAL of %d KiB after %d KiB of frames written, %d writer checkpoints", fi.Size()>>10, written>>10, s.WriterStats().Checkpoints)
}
