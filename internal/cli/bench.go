package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/bench"
)

// benchCmd is camotp bench: measurements on this machine.
func benchCmd(env Env) *cobra.Command {
	var prof string
	c := group("bench", "measure verifications/s, whole sign-ins/s, RADIUS code steps/s, fleet provisioning and reconnects on this machine",
		benchVerifyCmd(env, &prof), benchSignInCmd(env, &prof), benchRadiusCmd(env, &prof), benchProvisionCmd(env, &prof), benchReconnectCmd(env, &prof))
	c.PersistentFlags().StringVar(&prof, "cpuprofile", "", "write a CPU profile of the run to this file (where the time goes)")
	return c
}

// withScratch runs fn with a scratch directory, removed afterwards, and a
// CPU profile written to prof when prof is not "".
func withScratch(prof string, fn func(dir string) error) error {
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "camotp-bench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	return fn(dir)
}

func benchVerifyCmd(env Env, prof *string) *cobra.Command {
	var cfg bench.VerifyConfig
	c := &cobra.Command{
		Use:   "verify",
		Short: "verifications/s and p50/p99 through the real sign-in service (or --http through the JSON API)",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.IntVar(&cfg.Cameras, "cameras", 2000, "users with a provisioned camera (each signs in once per round)")
	fs.IntVar(&cfg.Clients, "clients", 8, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run each phase")
	fs.BoolVar(&cfg.HTTP, "http", false, "through the JSON API of a real HTTP server on loopback, beside a no-op handler measured with the same client")
	fs.StringVar(&cfg.DB, "db", "", "database as serve --db takes it (default: a SQLite file in a scratch directory); a PostgreSQL database gets bench tables, use an empty one")
	fs.IntVar(&cfg.Nodes, "nodes", 1, "also run on this many nodes sharing the --db (PostgreSQL) and compare with one")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if cfg.Cameras < 1 || cfg.Clients < 1 || cfg.Duration <= 0 || cfg.Nodes < 1 {
			return usagef("bench verify: --cameras, --clients and --nodes must be ≥ 1, --duration > 0")
		}
		return withScratch(*prof, func(dir string) error {
			cfg.Dir = dir
			fmt.Fprintf(env.Stderr, "bench verify: %d cameras, %d clients, %s …\n", cfg.Cameras, cfg.Clients, cfg.Duration)
			res, err := bench.Verify(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res)
			return nil
		})
	}
	return c
}

func benchSignInCmd(env Env, prof *string) *cobra.Command {
	var cfg bench.SignInConfig
	var levels string
	c := &cobra.Command{
		Use:   "signin",
		Short: "whole sign-ins/s (password, then the camera's code) over HTTP against a live fleet, p50/p99 at several concurrencies, beside a no-op handler",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.IntVar(&cfg.Officers, "officers", 200, "officers, each with a camera provisioned over the embedded broker (each signs in once per round)")
	fs.StringVar(&levels, "clients", "1,4,16", "concurrent clients (stations), comma-separated: one level each")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each level runs, on the real server and on the no-op handler each")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, f := range strings.Split(levels, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return usagef("bench signin: --clients: want numbers ≥ 1 separated by commas, got %q", levels)
			}
			cfg.Concurrency = append(cfg.Concurrency, n)
		}
		if cfg.Officers < 1 || cfg.Duration <= 0 {
			return usagef("bench signin: --officers must be ≥ 1, --duration > 0")
		}
		return withScratch(*prof, func(dir string) error {
			cfg.Dir = dir
			fmt.Fprintf(env.Stderr, "bench signin: %d officers, clients %v, %s per level and handler …\n", cfg.Officers, cfg.Concurrency, cfg.Duration)
			res, err := bench.SignIn(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res)
			return nil
		})
	}
	return c
}

func benchRadiusCmd(env Env, prof *string) *cobra.Command {
	var cfg bench.RadiusConfig
	c := &cobra.Command{
		Use:   "radius",
		Short: "RADIUS code-step Access-Requests/s, beside a no-op sign-in service",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.IntVar(&cfg.Users, "users", 1000, "users with a provisioned camera (each answers one challenge per round)")
	fs.IntVar(&cfg.Clients, "clients", 8, "concurrent NAS sockets")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "timed code steps per server (the real one, then the no-op one)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if cfg.Users < 1 || cfg.Clients < 1 || cfg.Duration <= 0 {
			return usagef("bench radius: --users and --clients must be ≥ 1, --duration > 0")
		}
		return withScratch(*prof, func(dir string) error {
			cfg.Dir = dir
			fmt.Fprintf(env.Stderr, "bench radius: %d users, %d clients, %s per server …\n", cfg.Users, cfg.Clients, cfg.Duration)
			res, err := bench.Radius(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res)
			return nil
		})
	}
	return c
}

func benchProvisionCmd(env Env, prof *string) *cobra.Command {
	var cfg bench.ProvisionConfig
	c := &cobra.Command{
		Use:   "provision",
		Short: "end-to-end provisioning of N cameras through the embedded broker (and --mqtt-external)",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.IntVar(&cfg.Cameras, "cameras", 1000, "cameras to provision")
	fs.StringVar(&cfg.External, "mqtt-external", "", "also run through this broker (e.g. a mosquitto at tcp://127.0.0.1:1884)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if cfg.Cameras < 1 {
			return usagef("bench provision: --cameras must be ≥ 1")
		}
		return withScratch(*prof, func(dir string) error {
			cfg.Dir = dir
			runs := []string{""}
			if cfg.External != "" {
				runs = append(runs, cfg.External)
			}
			for _, ext := range runs {
				c := cfg
				c.External = ext
				res, err := bench.Provision(cmd.Context(), c)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, res)
			}
			return nil
		})
	}
	return c
}

func benchReconnectCmd(env Env, prof *string) *cobra.Command {
	var cfg bench.ReconnectConfig
	c := &cobra.Command{
		Use:   "reconnect",
		Short: "a server restart under a connected fleet: connects per second",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.IntVar(&cfg.Cameras, "cameras", 1000, "connected cameras when the server stops")
	fs.DurationVar(&cfg.Down, "down", 20*time.Second, "how long the server stays down")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if cfg.Cameras < 1 || cfg.Down <= 0 {
			return usagef("bench reconnect: --cameras must be ≥ 1, --down > 0")
		}
		return withScratch(*prof, func(dir string) error {
			cfg.Dir = dir
			fmt.Fprintf(env.Stderr, "bench reconnect: %d cameras, server down %s …\n", cfg.Cameras, cfg.Down)
			res, err := bench.Reconnect(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res)
			return nil
		})
	}
	return c
}
