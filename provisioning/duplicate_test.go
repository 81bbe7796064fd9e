package provisioning_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// TestDuplicateAckIsNoWarning: an ack the server has seen already (a
// camera resends its ack until the broker takes it; QoS 1 may deliver it
// twice) is dropped at debug level, while it is proven and while a later
// operation is pending; an ack for a version never sent is still a
// warning.
func TestDuplicateAckIsNoWarning(t *testing.T) {
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := testenv.Server(t, t.TempDir(), func(c *server.Config) { c.Log = log })
	st := testenv.Camera(t, srv, "BC4-DUP", device.Body4)
	acks := make(chan provisioning.Ack, 4)
	agent := provisioning.NewAgent(st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Log: testenv.Log(t)})
	agent.Applied = func(a provisioning.Ack) { acks <- a }
	agent.Start()
	t.Cleanup(agent.Stop)
	v := testenv.Op(t, srv, "BC4-DUP", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-DUP", model.StateProvisioned, v)
	ack := <-acks
	dup, err := json.Marshal(ack)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	warnings := func() int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "provisioning ack dropped") {
				n++
			}
		}
		return n
	}

	srv.Provisioning.HandleMessage(ctx, "cams/BC4-DUP/ack", dup) // proven, nothing pending
	agent.Stop()
	testenv.Op(t, srv, "BC4-DUP", "rotate") // the camera is away: v2 stays pending
	srv.Provisioning.HandleMessage(ctx, "cams/BC4-DUP/ack", dup)
	if n := warnings(); n != 0 {
		t.Fatalf("%d warnings for duplicate acks:\n%s", n, logs.String())
	}
	// The two above, and any the camera sent itself (a command published
	// when it was started and again when the camera came online is
	// applied, and acknowledged, twice).
	if got := strings.Count(logs.String(), "level=DEBUG msg=\"provisioning ack dropped\""); got < 2 || !strings.Contains(logs.String(), "(rotate v2 pending)") {
		t.Fatalf("%d debug records for at least 2 duplicate acks:\n%s", got, logs.String())
	}

	never := ack
	never.Version = v + 5
	data, _ := json.Marshal(never)
	srv.Provisioning.HandleMessage(ctx, "cams/BC4-DUP/ack", data)
	if n := warnings(); n != 1 {
		t.Fatalf("an ack for a version never sent: %d warnings, want 1:\n%s", n, logs.String())
	}
	if c, err := srv.Store.Camera(ctx, "BC4-DUP"); err != nil || c.Version != v || c.PendingVersion != v+1 {
		t.Fatalf("duplicate acks changed the camera: %+v %v", c, err)
	}
}
