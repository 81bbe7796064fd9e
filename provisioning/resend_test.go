package provisioning_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
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
	link := &downLink{}
	svc.SetPublisher(link)
	if n, err := svc.ResendDue(ctx, 30*time.Second, 10); n != 0 || err != nil || link.published != 0 {
		t.Fatalf("resend with the link down: %d sent, %v, %d publishes", n, err, link.published)
	}
	if got, err := st.ClaimResends(ctx, now, 30*time.Second, 10); err != nil || len(got) != 1 {
		t.Fatalf("another node's claim after it: %v %v, want the command", got, err)
	}
}
