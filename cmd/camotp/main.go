// Command camotp is the body-camera TOTP system: camera emulator, fleet
// server with embedded MQTT broker, provisioning and sign-in service. Run
// "camotp help" for its subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/camotp/camotp/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := cli.Main(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}
