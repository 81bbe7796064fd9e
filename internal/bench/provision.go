package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
)

// ProvisionConfig sizes the provisioning benchmark.
type ProvisionConfig struct {
	Dir      string
	Cameras  int
	External string // broker URL; "" for the embedded broker
}

// ProvisionResult is what it measured.
type ProvisionResult struct {
	Broker       string
	Cameras      int
	Connect      time.Duration // all cameras connected
	Elapsed      time.Duration // first command to last verified proof
	PerSecond    float64
	MemPerCamera uint64 // bytes of heap+stack per connected headless camera
}

func (r ProvisionResult) String() string {
	return fmt.Sprintf("provision (%s): %d cameras connected in %s; provisioned end to end in %s (%.0f cameras/s); %.1f KiB per headless camera",
		r.Broker, r.Cameras, r.Connect.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), r.PerSecond, float64(r.MemPerCamera)/1024)
}

// Provision starts a server (embedded broker, or cfg.External), connects
// cfg.Cameras in-process cameras, provisions them all and waits for every
// proof.
func Provision(ctx context.Context, cfg ProvisionConfig) (ProvisionResult, error) {
	name := "embedded"
	if cfg.External != "" {
		name = "external " + cfg.External
	}
	// Each camera: its socket and the broker's side of it (embedded broker).
	if err := CheckFiles(uint64(2*cfg.Cameras + 256)); err != nil {
		return ProvisionResult{}, fmt.Errorf("%w; or run camotp serve and camotp fleet-sim in two processes", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := filepath.Join(cfg.Dir, fmt.Sprintf("run-%d", time.Now().UnixNano()))
	srv, err := server.Start(ctx, server.Config{DataDir: filepath.Join(run, "server"), HTTPAddr: "127.0.0.1:0",
		MQTTAddr: "127.0.0.1:0", MQTTExternal: cfg.External, Log: quiet})
	if err != nil {
		return ProvisionResult{}, err
	}
	defer srv.Close()
	fleet, err := NewFleet(filepath.Join(run, "cams"), "BENCH", cfg.Cameras, device.Body4)
	if err != nil {
		return ProvisionResult{}, err
	}
	for _, st := range fleet.States {
		pub := st.Identity().Public()
		if err := srv.Store.AddCamera(ctx, pub.Serial, pub.Model, pub.PublicKey); err != nil {
			return ProvisionResult{}, err
		}
	}
	broker := cfg.External
	if broker == "" {
		broker = "tcp://" + srv.MQTTAddr()
	}
	before := MemInUse()
	t0 := time.Now()
	fleet.Connect(broker, quiet)
	defer fleet.Stop()
	if err := fleet.WaitConnected(ctx, 5*time.Minute); err != nil {
		return ProvisionResult{}, err
	}
	res := ProvisionResult{Broker: name, Cameras: cfg.Cameras, Connect: time.Since(t0)}
	if after := MemInUse(); after > before {
		res.MemPerCamera = (after - before) / uint64(cfg.Cameras)
	}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(fleet.States) {
					return
				}
				if _, err := srv.Provisioning.Start(ctx, fleet.States[i].Identity().Serial, model.OpProvision, "bench", ""); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return ProvisionResult{}, firstErr
	}
	for {
		states, err := srv.Store.CameraStates(ctx)
		if err != nil {
			return ProvisionResult{}, err
		}
		n := states[string(model.StateProvisioned)] // provisioned, nothing pending
		if n == cfg.Cameras {
			break
		}
		if time.Since(start) > 10*time.Minute || ctx.Err() != nil {
			return ProvisionResult{}, fmt.Errorf("only %d of %d cameras provisioned", n, cfg.Cameras)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.Elapsed = time.Since(start)
	res.PerSecond = float64(cfg.Cameras) / res.Elapsed.Seconds()
	return res, nil
}
