package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/emulator"
	"github.com/camotp/camotp/hw"
)

// boardSimCmd is camotp board-sim: a simulated serial board.
func boardSimCmd(env Env) *cobra.Command {
	var link, id string
	c := &cobra.Command{
		Use:   "board-sim [--link PATH]",
		Short: "a simulated serial board (display + buttons) on a pty, for camera run --ui serial:PATH",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runBoardSim(cmd.Context(), env, link, id) },
	}
	c.Flags().StringVar(&link, "link", "", "also make this symlink to the port (a stable path, like /dev/serial/by-id/...)")
	c.Flags().StringVar(&id, "id", "sim-board", "board id the simulator reports")
	return c
}

func runBoardSim(ctx context.Context, env Env, link, id string) error {
	p, err := hw.OpenPty()
	if err != nil {
		return err
	}
	defer p.Close()
	port := p.SlavePath
	if link != "" {
		if err := replaceSymlink(p.SlavePath, link); err != nil {
			return err
		}
		defer os.Remove(link)
		port = link
	}
	fmt.Fprintf(env.Stdout, "board-sim: serial port %s\nrun the camera on it:  camotp camera run --state DIR --ui serial:%s\n", port, port)
	sim := hw.NewSim(p.Master, id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sim.Run(ctx) // ends with ctx; a failing pty shows as a board the host never draws on
	screen, err := env.NewScreen()
	if err != nil {
		return fmt.Errorf("open terminal: %w", err)
	}
	ui := emulator.NewBoardSim(screen, sim)
	ui.Notes = []string{"port: " + port, "camotp camera run --state DIR --ui serial:" + port}
	err = ui.Run(ctx)
	cancel()
	return err
}

// replaceSymlink points link at target; an existing file there is replaced
// only when it is a symlink.
func replaceSymlink(target, link string) error {
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("--link %s exists and is not a symlink", link)
		}
		if err := os.Remove(link); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("--link: %w", err)
	}
	return nil
}
