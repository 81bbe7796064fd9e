package cli

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage/postgres"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
)

// fleetSimCameras is the size of the fleet TestKillDispatchingNode
// provisions across two nodes.
const fleetSimCameras = 500

// TestKillDispatchingNode: two camotp serve processes on one PostgreSQL and
// one mosquitto with dynamic security; fleet-sim registers and provisions
// 500 cameras through node A and node A is killed with SIGKILL half-way.
// fleet-sim carries on through node B, every camera ends provisioned once
// (version 1: never provisioned twice), and every camera holds the seed the
// server has for it.
func TestKillDispatchingNode(t *testing.T) {
	if testing.Short() {
		t.Skip("a 500-camera fleet on two nodes")
	}
	db := pgtest.URL(t)
	m := testenv.StartMosquitto(t)
	nodeArgs := func(data, httpAddr, id string) []string {
		return []string{"serve", "--data", data, "--db", db, "--http", httpAddr, "--mqtt-external", m.URL,
			"--mqtt-dynsec-admin", m.AdminUser, "--mqtt-dynsec-password-file", m.AdminPasswordFile,
			"--node-id", id, "--resend-every", "3s"}
	}
	dataA, dataB := t.TempDir(), t.TempDir()
	httpA, httpB := freeAddr(t), freeAddr(t)
	var outA, outB bytes.Buffer
	nodeA := startBinary(t, &outA, nodeArgs(dataA, httpA, "a")...)
	waitHealthy(t, "http://"+httpA)
	testenv.CopySharedFiles(t, dataA, dataB)
	startBinary(t, &outB, nodeArgs(dataB, httpB, "b")...)
	waitHealthy(t, "http://"+httpB)

	state := t.TempDir()
	sim := exec.Command(binary, "fleet-sim", "--server", "http://"+httpA+",http://"+httpB,
		"--token-file", filepath.Join(dataA, server.AdminTokenFile), "--broker", m.URL, "--broker-auth", "derived",
		"--state", state, "--prefix", "KILL", "--cameras", strconv.Itoa(fleetSimCameras), "--timeout", "5m")
	var simOut bytes.Buffer
	sim.Stdout = &simOut
	progress, err := sim.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	key, err := masterkey.Load(filepath.Join(dataB, server.MasterKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), db, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var simErr bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(&simErr, progress) })
	// Kill node A (fleet-sim's first server: it dispatches) once it has
	// started a third of the operations and before all are started.
	type counts struct{ started, provisioned int }
	var atKill counts
	killed := false
	for deadline := time.Now().Add(3 * time.Minute); !killed && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		states, err := st.CameraStates(t.Context())
		if err != nil {
			continue
		}
		c := counts{started: states["pending:provision"] + states[string(model.StateProvisioned)], provisioned: states[string(model.StateProvisioned)]}
		if c.started >= fleetSimCameras/3 {
			nodeA.Process.Signal(syscall.SIGKILL)
			atKill, killed = c, true
		}
	}
	err = sim.Wait()
	wg.Wait()
	if err != nil {
		t.Fatalf("fleet-sim: %v\n%s\n%s", err, simOut.String(), simErr.String())
	}
	t.Logf("node A killed with %d operations started, %d cameras provisioned (of %d); fleet-sim:\n%s",
		atKill.started, atKill.provisioned, fleetSimCameras, simOut.String())
	if !killed || atKill.started >= fleetSimCameras {
		t.Fatalf("node A was not killed while dispatching (%+v):\n%s", atKill, simErr.String())
	}

	// The database (node B's view) and every camera agree.
	cams, err := st.Cameras(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cams) != fleetSimCameras {
		t.Fatalf("%d cameras registered, want %d", len(cams), fleetSimCameras)
	}
	for _, c := range cams {
		if c.State != model.StateProvisioned || c.Version != 1 || c.PendingOp != "" {
			t.Fatalf("camera %s: %s v%d pending %q; want provisioned once (v1)", c.Serial, c.State, c.Version, c.PendingOp)
		}
		server, err := st.ActiveSeed(t.Context(), c.Serial)
		if err != nil {
			t.Fatal(err)
		}
		cam, err := device.OpenState(filepath.Join(state, c.Serial))
		if err != nil {
			t.Fatal(err)
		}
		held, err := cam.Seed()
		if err != nil {
			t.Fatalf("camera %s holds no seed: %v", c.Serial, err)
		}
		now := time.Now()
		want, _ := server.Code(now)
		got, _ := held.Code(now)
		if got != want || held.Version != server.Version {
			t.Fatalf("camera %s shows %s (seed v%d), the server expects %s (v%d)", c.Serial, got, held.Version, want, server.Version)
		}
	}
	if !strings.Contains(simOut.String(), "0 failures") {
		t.Fatalf("fleet-sim reported failures:\n%s", simOut.String())
	}
}
