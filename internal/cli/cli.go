// Package cli implements the camotp command's subcommands. cmd/camotp only
// calls Main; everything here takes its streams and arguments explicitly so
// tests can run it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error caused by the command line (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Env is what a command runs with.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the real binary).
	Getenv func(string) string
}

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"camera", "camera init|run ...   a camera: create its state, run it (tui or headless)", runCamera},
		{"board-sim", "board-sim [--link PATH]   a simulated serial board (display + buttons) on a pty, for camera run --ui serial:PATH", runBoardSim},
		{"serve", "serve [--data DIR] [--http ADDR] [--mqtt ADDR]   the server: broker, registry, APIs", runServe},
		{"migrate", "migrate --to postgres://… [--data DIR]   move an installation's SQLite database into an empty PostgreSQL one (all or nothing)", runMigrate},
		{"demo", "demo [--headless] [--camera SERIAL]   the whole product: server, demo officers, provisioned cameras, emulator", runDemo},
		{"bench", "bench verify|radius|provision ...   measure verifications/s, RADIUS code steps/s and fleet provisioning on this machine", runBench},
		{"fleet-sim", "fleet-sim [--server URL] [--broker URL] --cameras N [--assign]   N headless cameras registered and provisioned through the admin API", runFleetSim},
		{"admin", "admin [--server URL] camera|user|audit ...   fleet administration", runAdmin},
	}
}

// Main runs the camotp command line and returns the process exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(env.Stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(env, c.run(ctx, env, args[1:]))
		}
	}
	fmt.Fprintf(env.Stderr, "camotp: unknown command %q\n", args[0])
	printUsage(env.Stderr)
	return exitUsage
}

func exitCode(env Env, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "camotp: %v\n", err)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFail
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: camotp COMMAND [flags]")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintln(w, "  "+c.usage)
	}
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("camotp "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses args, turning flag errors into usage errors, and refuses
// stray positional arguments unless maxArgs allows them.
func parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > maxArgs {
		return usagef("%s: unexpected argument %q", fs.Name(), strings.Join(fs.Args()[maxArgs:], " "))
	}
	return nil
}
