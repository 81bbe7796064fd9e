package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/emulator"
)

func runCamera(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usagef("camera: want a subcommand: init or run")
	}
	switch args[0] {
	case "init":
		return cameraInit(env, args[1:])
	case "run":
		return cameraRun(ctx, env, args[1:])
	}
	return usagef("camera: unknown subcommand %q (want init or run)", args[0])
}

func cameraInit(env Env, args []string) error {
	fs := newFlags(env, "camera init")
	dir := fs.String("state", "", "camera state directory (created)")
	serial := fs.String("serial", "", "serial number")
	model := fs.String("model", "", "model: body4, body3 or workforce")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *dir == "" || *serial == "" || *model == "" {
		return usagef("camera init: --state, --serial and --model are required")
	}
	m, err := device.ParseModel(*model)
	if err != nil {
		return usageError{err}
	}
	if err := device.ValidateSerial(*serial); err != nil {
		return usageError{err}
	}
	st, err := device.InitState(*dir, *serial, m)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st.Identity().Public())
}

// cameraFlags are the flags of 'camera run'.
type cameraFlags struct {
	dir, ui, script, clock, testSeed string
	offset                           time.Duration
	ppm                              float64
}

func cameraRun(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "camera run")
	var f cameraFlags
	fs.StringVar(&f.dir, "state", "", "camera state directory (from 'camera init')")
	fs.StringVar(&f.ui, "ui", "tui", "user interface: tui or headless")
	fs.StringVar(&f.script, "script", "", "headless: comma-separated events press:B, double:B, long:B, wait:D")
	fs.StringVar(&f.clock, "clock", "", "QA: fixed camera time (RFC 3339)")
	fs.DurationVar(&f.offset, "clock-offset", 0, "QA: camera clock offset (e.g. 45s, -2m)")
	fs.Float64Var(&f.ppm, "clock-ppm", 0, "QA: camera clock drift in parts per million")
	fs.StringVar(&f.testSeed, "test-seed", "", "factory test mode: use this base32 seed, show TEST, never connect")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if f.dir == "" {
		return usagef("camera run: --state is required")
	}
	clock, err := f.buildClock()
	if err != nil {
		return err
	}
	st, err := device.OpenState(f.dir)
	if err != nil {
		return err
	}
	id := st.Identity()
	cfg := device.Config{Serial: id.Serial, Model: id.Model, Clock: clock, Seeds: st}
	if f.testSeed != "" {
		seed, err := device.ParseBase32Seed(f.testSeed)
		if err != nil {
			return usagef("--test-seed: %v", err)
		}
		cfg.Seeds, cfg.TestMode = device.TestSeed{S: seed}, true
	}
	switch f.ui {
	case "headless":
		steps, err := emulator.ParseScript(f.script)
		if err != nil {
			return usageError{err}
		}
		oc := &device.OffsetClock{Base: clock}
		cfg.Clock = oc
		cam, err := device.New(cfg)
		if err != nil {
			return err
		}
		emulator.Play(cam, oc, 0, steps)
		_, err = fmt.Fprintln(env.Stdout, cam.Screen().Text())
		return err
	case "tui":
		if f.script != "" {
			return usagef("camera run: --script needs --ui headless")
		}
		cam, err := device.New(cfg)
		if err != nil {
			return err
		}
		screen, err := tcell.NewScreen()
		if err != nil {
			return fmt.Errorf("open terminal: %w", err)
		}
		status := ""
		if cfg.TestMode {
			status = "TEST SEED"
		}
		return emulator.NewTUI(screen, id.Model, id.Serial, clock, status).Run(ctx, cam)
	}
	return usagef("camera run: unknown --ui %q (want tui or headless)", f.ui)
}

func (f cameraFlags) buildClock() (device.Clock, error) {
	var clock device.Clock = device.SystemClock{}
	if f.clock != "" {
		t, err := time.Parse(time.RFC3339, f.clock)
		if err != nil {
			return nil, usagef("--clock: want RFC 3339 time like 2009-02-13T23:31:30Z: %v", err)
		}
		clock = device.FixedClock{T: t}
	}
	if f.offset != 0 || f.ppm != 0 {
		clock = device.DriftClock{Base: clock, Offset: f.offset, PPM: f.ppm, Epoch: clock.Now()}
	}
	return clock, nil
}
