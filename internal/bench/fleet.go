package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/provisioning"
)

// Fleet is a set of headless cameras in one process, each with its own state
// directory and its own MQTT client.
type Fleet struct {
	States []*device.State
	Agents []*provisioning.Agent
	// Observe, when set before Connect, is told every camera's link events.
	Observe func(serial string, e provisioning.LinkEvent)
	// Applied, when set before Connect, is told every ack a camera's
	// broker took (a seed applied, a wipe done).
	Applied func(serial string, a provisioning.Ack)
	// ReportClock, when set before Connect, gives each camera the clock
	// its clock reports give (its simulated drift); nil: the link's.
	ReportClock func(st *device.State) device.Clock
}

// NewFleet creates n cameras named prefix-00000… under dir (reusing the
// ones that exist).
func NewFleet(dir, prefix string, n int, model device.Model) (*Fleet, error) {
	f := &Fleet{}
	for i := range n {
		serial := fmt.Sprintf("%s-%05d", prefix, i)
		path := filepath.Join(dir, serial)
		st, err := device.OpenState(path)
		if err != nil {
			if st, err = device.InitState(path, serial, model); err != nil {
				return nil, err
			}
		}
		f.States = append(f.States, st)
	}
	return f, nil
}

// Connect starts every camera's MQTT client on broker.
func (f *Fleet) Connect(broker string, log *slog.Logger) {
	f.ConnectWith(provisioning.LinkConfig{Broker: broker, Log: log})
}

// ConnectWith starts an agent per camera with cfg (the broker, its log,
// the credential the cameras present).
func (f *Fleet) ConnectWith(cfg provisioning.LinkConfig) {
	for _, st := range f.States {
		c := cfg
		if f.ReportClock != nil {
			c.ReportClock = f.ReportClock(st)
		}
		a := provisioning.NewAgent(st, c)
		serial := st.Identity().Serial
		if f.Observe != nil {
			a.Observe = func(e provisioning.LinkEvent) { f.Observe(serial, e) }
		}
		if f.Applied != nil {
			a.Applied = func(ack provisioning.Ack) { f.Applied(serial, ack) }
		}
		a.Start()
		f.Agents = append(f.Agents, a)
	}
}

// WaitConnected waits until every client is connected.
func (f *Fleet) WaitConnected(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n := 0
		for _, a := range f.Agents {
			if a.Status() == "connected" {
				n++
			}
		}
		if n == len(f.Agents) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d cameras connected", n, len(f.Agents))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop disconnects every camera (in parallel: each waits for its quiesce).
func (f *Fleet) Stop() {
	var wg sync.WaitGroup
	for _, a := range f.Agents {
		wg.Go(a.Stop)
	}
	wg.Wait()
}

// MemInUse is the heap and stack memory in use after a GC.
func MemInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// CheckFiles raises the open-file limit to its hard maximum when it is
// lower than need and fails with a clear message when that is not enough:
// every in-process camera holds a socket (and, against the embedded broker,
// the broker holds another).
func CheckFiles(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable here; let the run tell
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max >= need {
		lim.Cur = need
	} else {
		lim.Cur = lim.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur >= need {
		return nil
	}
	return fmt.Errorf("this run needs about %d open files and the limit is %d: raise it (ulimit -n) or use fewer cameras per process", need, lim.Cur)
}
