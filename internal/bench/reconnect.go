package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/provisioning"
)

// ReconnectConfig sizes the reconnect benchmark.
type ReconnectConfig struct {
	Dir     string
	Cameras int
	// Down is how long the server stays down.
	Down time.Duration
}

// ReconnectResult is what a server restart under a connected fleet
// measured: how hard the cameras knocked while it was down and how their
// connects spread once it was back.
type ReconnectResult struct {
	Cameras      int
	Down         time.Duration
	AttemptsDown int           // connection attempts while the server was down
	PerSecondUp  []int         // accepted connects in each second after the restart
	AllBack      time.Duration // restart to the last camera connected
}

// Peak is the most connects in one second after the restart.
func (r ReconnectResult) Peak() int {
	peak := 0
	for _, n := range r.PerSecondUp {
		peak = max(peak, n)
	}
	return peak
}

func (r ReconnectResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reconnect: %d cameras; server down %s: %d connection attempts (%.1f/s, %.2f per camera)\n",
		r.Cameras, r.Down.Round(100*time.Millisecond), r.AttemptsDown, float64(r.AttemptsDown)/r.Down.Seconds(), float64(r.AttemptsDown)/float64(r.Cameras))
	fmt.Fprintf(&b, "reconnect: all back %s after the restart; peak %d connects/s\n", r.AllBack.Round(100*time.Millisecond), r.Peak())
	b.WriteString("reconnect: connects per second after the restart:")
	for i, n := range r.PerSecondUp {
		if i%10 == 0 {
			fmt.Fprintf(&b, "\n  %3ds:", i)
		}
		fmt.Fprintf(&b, " %5d", n)
	}
	return b.String()
}

// linkLog records link events with their times.
type linkLog struct {
	mu       sync.Mutex
	attempts []time.Time
	ups      []time.Time
}

func (l *linkLog) observe(_ string, e provisioning.LinkEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Kind {
	case provisioning.EventAttempt:
		l.attempts = append(l.attempts, e.At)
	case provisioning.EventUp:
		l.ups = append(l.ups, e.At)
	}
}

// Reconnect starts a server with its embedded broker, connects
// cfg.Cameras in-process cameras, stops the server for cfg.Down, starts it
// again on the same data and port, and records every camera's connection
// attempts and connects.
func Reconnect(ctx context.Context, cfg ReconnectConfig) (ReconnectResult, error) {
	if err := CheckFiles(uint64(2*cfg.Cameras + 256)); err != nil {
		return ReconnectResult{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := filepath.Join(cfg.Dir, fmt.Sprintf("reconnect-%d", time.Now().UnixNano()))
	scfg := server.Config{DataDir: filepath.Join(run, "server"), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: quiet}
	srv, err := server.Start(ctx, scfg)
	if err != nil {
		return ReconnectResult{}, err
	}
	closed := false
	defer func() {
		if !closed {
			srv.Close()
		}
	}()
	scfg.MQTTAddr = srv.MQTTAddr() // the restart listens where the cameras knock
	fleet, err := NewFleet(filepath.Join(run, "cams"), "RECON", cfg.Cameras, device.Body4)
	if err != nil {
		return ReconnectResult{}, err
	}
	for _, st := range fleet.States {
		pub := st.Identity().Public()
		if err := srv.Store.AddCamera(ctx, pub.Serial, pub.Model, pub.PublicKey); err != nil {
			return ReconnectResult{}, err
		}
	}
	var log linkLog
	fleet.Observe = log.observe
	fleet.Connect("tcp://"+scfg.MQTTAddr, quiet)
	defer fleet.Stop()
	if err := fleet.WaitConnected(ctx, 5*time.Minute); err != nil {
		return ReconnectResult{}, err
	}

	down := time.Now()
	srv.Close()
	closed = true
	select {
	case <-ctx.Done():
		return ReconnectResult{}, ctx.Err()
	case <-time.After(cfg.Down):
	}
	up := time.Now()
	if srv, err = server.Start(ctx, scfg); err != nil {
		return ReconnectResult{}, fmt.Errorf("restart: %w", err)
	}
	closed = false
	if err := fleet.WaitConnected(ctx, 5*time.Minute); err != nil {
		return ReconnectResult{}, fmt.Errorf("after the restart: %w", err)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	res := ReconnectResult{Cameras: cfg.Cameras, Down: up.Sub(down)}
	for _, t := range log.attempts {
		if t.After(down) && t.Before(up) {
			res.AttemptsDown++
		}
	}
	for _, t := range log.ups {
		if !t.After(up) {
			continue
		}
		sec := int(t.Sub(up) / time.Second)
		for len(res.PerSecondUp) <= sec {
			res.PerSecondUp = append(res.PerSecondUp, 0)
		}
		res.PerSecondUp[sec]++
		res.AllBack = max(res.AllBack, t.Sub(up))
	}
	return res, nil
}
