package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/camotp/camotp/internal/bench"
)

func runBench(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usagef("bench: want verify, radius, provision or reconnect")
	}
	// --cpuprofile FILE may follow the benchmark name: where the time goes.
	var prof string
	for i := 1; i < len(args)-1; i++ {
		if args[i] == "--cpuprofile" {
			prof = args[i+1]
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "camotp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	switch args[0] {
	case "verify":
		fs := newFlags(env, "bench verify")
		var cfg bench.VerifyConfig
		fs.IntVar(&cfg.Cameras, "cameras", 2000, "users with a provisioned camera (each signs in once per round)")
		fs.IntVar(&cfg.Clients, "clients", 8, "concurrent clients")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run each phase")
		fs.BoolVar(&cfg.HTTP, "http", false, "through the JSON API of a real HTTP server on loopback, beside a no-op handler measured with the same client")
		fs.StringVar(&cfg.DB, "db", "", "database as serve --db takes it (default: a SQLite file in a scratch directory); a PostgreSQL database gets bench tables, use an empty one")
		fs.IntVar(&cfg.Nodes, "nodes", 1, "also run on this many nodes sharing the --db (PostgreSQL) and compare with one")
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		if cfg.Cameras < 1 || cfg.Clients < 1 || cfg.Duration <= 0 || cfg.Nodes < 1 {
			return usagef("bench verify: --cameras, --clients and --nodes must be ≥ 1, --duration > 0")
		}
		cfg.Dir = dir
		fmt.Fprintf(env.Stderr, "bench verify: %d cameras, %d clients, %s …\n", cfg.Cameras, cfg.Clients, cfg.Duration)
		res, err := bench.Verify(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res)
		return nil
	case "radius":
		fs := newFlags(env, "bench radius")
		var cfg bench.RadiusConfig
		fs.IntVar(&cfg.Users, "users", 1000, "users with a provisioned camera (each answers one challenge per round)")
		fs.IntVar(&cfg.Clients, "clients", 8, "concurrent NAS sockets")
		fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "timed code steps per server (the real one, then the no-op one)")
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		if cfg.Users < 1 || cfg.Clients < 1 || cfg.Duration <= 0 {
			return usagef("bench radius: --users and --clients must be ≥ 1, --duration > 0")
		}
		cfg.Dir = dir
		fmt.Fprintf(env.Stderr, "bench radius: %d users, %d clients, %s per server …\n", cfg.Users, cfg.Clients, cfg.Duration)
		res, err := bench.Radius(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res)
		return nil
	case "provision":
		fs := newFlags(env, "bench provision")
		var cfg bench.ProvisionConfig
		fs.IntVar(&cfg.Cameras, "cameras", 1000, "cameras to provision")
		fs.StringVar(&cfg.External, "mqtt-external", "", "also run through this broker (e.g. a mosquitto at tcp://127.0.0.1:1884)")
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		if cfg.Cameras < 1 {
			return usagef("bench provision: --cameras must be ≥ 1")
		}
		cfg.Dir = dir
		runs := []string{""}
		if cfg.External != "" {
			runs = append(runs, cfg.External)
		}
		for _, ext := range runs {
			c := cfg
			c.External = ext
			res, err := bench.Provision(ctx, c)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res)
		}
		return nil
	case "reconnect":
		fs := newFlags(env, "bench reconnect")
		var cfg bench.ReconnectConfig
		fs.IntVar(&cfg.Cameras, "cameras", 1000, "connected cameras when the server stops")
		fs.DurationVar(&cfg.Down, "down", 20*time.Second, "how long the server stays down")
		if err := parse(fs, args[1:], 0); err != nil {
			return err
		}
		if cfg.Cameras < 1 || cfg.Down <= 0 {
			return usagef("bench reconnect: --cameras must be ≥ 1, --down > 0")
		}
		cfg.Dir = dir
		fmt.Fprintf(env.Stderr, "bench reconnect: %d cameras, server down %s …\n", cfg.Cameras, cfg.Down)
		res, err := bench.Reconnect(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res)
		return nil
	}
	return usagef("bench: unknown benchmark %q (want verify, radius, provision or reconnect)", args[0])
}
