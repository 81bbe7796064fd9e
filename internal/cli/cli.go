// Package cli implements the camotp command's subcommands. cmd/camotp only
// calls Main; everything here takes its streams and arguments explicitly so
// tests can run it in-process.
//
// The command tree is built with cobra, afresh on every call of Main (no
// package state): one file per command group (camera.go, serve.go,
// admin.go, admin_camera.go, …). cobra gives every group its help
// (camotp admin camera --help), usage errors and shell completion
// (camotp completion bash|zsh).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	buildversion "github.com/camotp/camotp/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	// exitNoCode: the camera shows no code (camera code, --expect-code).
	exitNoCode = 3
	// exitAuditBroken: a hash chain of the audit log is broken (admin
	// audit verify).
	exitAuditBroken = 4
)

// exitError is an error with its own exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

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
	// Version is what camotp --version prints ("": the version Go stamped
	// into the binary's build information, or "dev").
	Version string
	// NewScreen opens the terminal the full-screen interfaces draw on
	// (camera run --ui tui, demo, board-sim); nil means tcell.NewScreen.
	// Tests pass a tcell.SimulationScreen.
	NewScreen func() (tcell.Screen, error)
}

// Main runs the camotp command line and returns the process exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.NewScreen == nil {
		env.NewScreen = tcell.NewScreen
	}
	root := newRoot(env)
	root.SetArgs(longFlags(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "camotp: %v\n", err)
	if ee := (exitError{}); errors.As(err, &ee) {
		return ee.code
	}
	var u usageError
	if errors.As(err, &u) {
		if cmd != nil {
			fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return exitFail
}

// newRoot builds the whole command tree for one run.
func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "camotp",
		Short: "camotp: body-camera TOTP second factor — camera emulator, fleet server, provisioning, sign-in",
		Long: `camotp: body-camera TOTP second factor for police sign-in. One binary: the
camera (emulator, headless, serial board), the server (embedded MQTT broker,
registry, sign-in, OpenID Connect, RADIUS), its administration, the demo
and the benchmarks.`,
		Version:       version(env.Version),
		SilenceErrors: true, // Main prints errors, with the exit code they deserve
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetUsageFunc(writeUsage)
	root.SetVersionTemplate("camotp {{.Version}}\n")
	root.AddCommand(
		cameraCmd(env),
		boardSimCmd(env),
		serveCmd(env),
		migrateCmd(env),
		demoCmd(env),
		benchCmd(env),
		fleetSimCmd(env),
		adminCmd(env),
	)
	// cobra adds "completion" when it runs; add it now, to give it the
	// groups' usage errors.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "print the shell completion script: bash, zsh, fish or powershell (see camotp completion bash --help)"
			c.Args = groupArgs
			c.RunE = groupRun
		}
	}
	return root
}

// writeUsage prints a command's usage: a group's commands, one line each,
// or a command's own usage line; then the flags.
func writeUsage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:\n")
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "  %s COMMAND [flags]\n\nCommands:\n", c.CommandPath())
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "  %-*s %s\n", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	} else {
		fmt.Fprintf(&b, "  %s\n", c.UseLine())
	}
	if c.HasAvailableLocalFlags() {
		fmt.Fprintf(&b, "\nFlags:\n%s", c.LocalFlags().FlagUsages())
	}
	if c.HasAvailableInheritedFlags() {
		fmt.Fprintf(&b, "\nFlags of the commands above it:\n%s", c.InheritedFlags().FlagUsages())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for a command's flags.\n", c.CommandPath())
	}
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

// group returns a command that only holds subcommands: without one it
// prints its usage and fails (exit 2), and it names an unknown one.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: groupArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

// groupRun runs a group command given no subcommand (or an unknown one:
// groupArgs has refused it already).
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
		return usagef("%swant a command (%s)", prefix(cmd), subcommands(cmd))
	}
	return groupArgs(cmd, args)
}

// groupArgs refuses a group's arguments: any is an unknown subcommand.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%sunknown command %q (want %s)", prefix(cmd), args[0], subcommands(cmd))
	}
	return nil
}

// subcommands lists a group's commands for a message: "a, b or c".
func subcommands(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" {
			names = append(names, c.Name())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// prefix starts a message about cmd: its path under camotp and ": "
// ("admin camera: "), or nothing for camotp itself.
func prefix(cmd *cobra.Command) string {
	if _, path, ok := strings.Cut(cmd.CommandPath(), " "); ok {
		return path + ": "
	}
	return ""
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%sunexpected argument %q", prefix(cmd), strings.Join(args, " "))
	}
	return nil
}

// oneArg wants exactly one positional argument, described by what ("a
// serial", "one username").
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%swant %s", prefix(cmd), what)
		}
		return nil
	}
}

// version is override when set, else the version the binary was built
// with (internal/version: the Makefile's -ldflags -X, else build info).
func version(override string) string {
	if override != "" {
		return override
	}
	return buildversion.String()
}

// longFlags accepts Go-flag style single-dash long flags (-data DIR, as
// the standard flag package did before cobra): an argument "-NAME" or
// "-NAME=V" whose NAME is a long flag of any command is given its second
// dash. Arguments after "--" are left alone.
func longFlags(root *cobra.Command, args []string) []string {
	names := map[string]bool{"help": true, "version": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { names[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && names[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
