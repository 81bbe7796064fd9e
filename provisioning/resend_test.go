package provisioning_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
)

// downLink is a publisher whose broker link is down.
type downLink struct{ published int }

func (d *downLink) Publish(context.Context, string, []byte) error {
	d.published++
	return provisioning.ErrLinkDown
}
func (d *downLink) Connected() bool { return false }

// TestResendDueNeedsALink: a node whose link is down claims no pending
// command, so a node that can publish gets it at once.
func TestResendDueNeedsALink(t *testing.T) {
	ctx := context.Background()
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddCamera(ctx, "BC4-0001", device.Body4, "cam1:x"); err != nil {
		t.Fatal(err)
	}
	seed := device.DefaultSeed([]byte("12345678901234567890"))
	if _, err := st.StartOp(ctx, "BC4-0001", model.OpProvision, &seed, []byte("challenge"), func(uint64) ([]byte, error) { return []byte("cmd"), nil }); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	svc := provisioning.NewService(st, [32]byte{1}, func() time.Time { return now }, nil)
	defer svc.Close()
	link := &downLink{}
	svc.SetPublisher(link)
	if n, err := svc.ResendDue(ctx, 30*time.Second, 10); n != 0 || err != nil || link.published != 0 {
		t.Fatalf("resend with the link down: %d sent, %v, %d publishes", n, err, link.published)
	}
	if got, err := st.ClaimResends(ctx, now, 30*time.Second, 10); err != nil || len(got) != 1 {
		t.Fatalf("another node's claim after it: %v %v, want the command", got, err)
	}
}

// stuckPresence is a store whose presence writes wait until released.
type stuckPresence struct {
	*sqlite.Store
	release chan struct{}
	writes  chan string
}

func (s *stuckPresence) SetPresence(ctx context.Context, serial string, online bool, at time.Time) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.writes <- serial
	return s.Store.SetPresence(ctx, serial, online, at)
}

// TestPresenceDoesNotWaitForTheStore: the broker's hook calls SetPresence
// for every connect; with the database stuck, it still returns at once
// (the cameras' connections do not wait), and the newest event of each
// camera is written once the database answers.
func TestPresenceDoesNotWaitForTheStore(t *testing.T) {
	key, _ := masterkey.New(make([]byte, 32))
	lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "p.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	st := &stuckPresence{Store: lite, release: make(chan struct{}), writes: make(chan string, 100)}
	svc := provisioning.NewService(st, [32]byte{1}, nil, nil)
	defer svc.Close()
	t0 := time.Now()
	together.Run(30, func(i int) {
		svc.SetPresence(fmt.Sprintf("BC4-%04d", i%10), i%3 != 0)
	})
	if took := time.Since(t0); took > 2*time.Second {
		t.Fatalf("30 presence events with the database stuck took %s", took)
	}
	close(st.release)
	seen := map[string]bool{}
	for len(seen) < 10 {
		select {
		case sn := <-st.writes:
			seen[sn] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("presence written for %d of 10 cameras", len(seen))
		}
	}
}
