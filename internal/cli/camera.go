package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/emulator"
	"github.com/camotp/camotp/hw"
	"github.com/camotp/camotp/provisioning"
)

// cameraCmd is camotp camera: a camera's state and the camera itself.
func cameraCmd(env Env) *cobra.Command {
	return group("camera", "a camera: create its state (init), run it (run: tui, headless or a serial board)",
		cameraInitCmd(env), cameraRunCmd(env))
}

func cameraInitCmd(env Env) *cobra.Command {
	var dir, serial, model, serverKey string
	c := &cobra.Command{
		Use:   "init --state DIR --serial SN --model M",
		Short: "create a camera's state directory and print its public identity (for admin camera add)",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.StringVar(&dir, "state", "", "camera state directory (created)")
	fs.StringVar(&serial, "serial", "", "serial number")
	fs.StringVar(&model, "model", "", "model: body4, body3 or workforce")
	fs.StringVar(&serverKey, "server-key", "", "pin the provisioning server's key (base64, from 'camotp admin server-key'); needed before a camera can log in to an external broker with --broker-auth derived")
	c.RunE = func(*cobra.Command, []string) error {
		if dir == "" || serial == "" || model == "" {
			return usagef("camera init: --state, --serial and --model are required")
		}
		var pin []byte
		if serverKey != "" {
			var err error
			if pin, err = parseServerKey(serverKey); err != nil {
				return usageError{err}
			}
		}
		m, err := device.ParseModel(model)
		if err != nil {
			return usageError{err}
		}
		if err := device.ValidateSerial(serial); err != nil {
			return usageError{err}
		}
		st, err := device.InitState(dir, serial, m)
		if err != nil {
			return err
		}
		if pin != nil {
			if err := st.PinServerKey(pin); err != nil {
				return err
			}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st.Identity().Public())
	}
	return c
}

// cameraFlags are the flags of 'camera run'.
type cameraFlags struct {
	dir, ui, script, clock, testSeed string
	offset                           time.Duration
	ppm                              float64
	broker, brokerCA                 string
	brokerAuth, serverKey            string
	waitSeed                         time.Duration
	follow                           bool
}

func cameraRunCmd(env Env) *cobra.Command {
	var f cameraFlags
	c := &cobra.Command{
		Use:   "run --state DIR [--ui tui|headless|serial:PATH] [--broker URL | --test-seed B32]",
		Short: "run a camera: terminal UI, headless (a script, or following its screen), or on a serial board",
		Long: `Run a camera from its state directory (camotp camera init).

Its seed comes from the fleet (--broker: the provisioning server sends it)
or, in factory test mode, from --test-seed (no broker; the screen shows
TEST). --ui headless plays --script and prints the screen; with --broker
and no --script, or with --follow, it keeps running and prints the screen
each time it changes, until Ctrl-C.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cameraRun(cmd.Context(), env, f) },
	}
	fs := c.Flags()
	fs.StringVar(&f.dir, "state", "", "camera state directory (from 'camera init')")
	fs.StringVar(&f.ui, "ui", "tui", "user interface: tui, headless, or serial:PATH[?baud=N] (a board on a serial port)")
	fs.StringVar(&f.script, "script", "", "headless: comma-separated events press:B, double:B, long:B, wait:D")
	fs.StringVar(&f.clock, "clock", "", "QA: fixed camera time (RFC 3339)")
	fs.DurationVar(&f.offset, "clock-offset", 0, "QA: camera clock offset (e.g. 45s, -2m)")
	fs.Float64Var(&f.ppm, "clock-ppm", 0, "QA: camera clock drift in parts per million")
	fs.StringVar(&f.testSeed, "test-seed", "", "factory test mode: use this base32 seed, show TEST, never connect")
	fs.StringVar(&f.broker, "broker", "", "fleet MQTT broker (tcp://HOST:PORT or ssl://HOST:PORT) to receive seeds from")
	fs.StringVar(&f.brokerCA, "broker-ca", "", "CA certificate (PEM) for an ssl:// broker")
	fs.StringVar(&f.brokerAuth, "broker-auth", provisioning.CredentialToken, "broker login: token (signed, fresh each connect: camotp's embedded broker, EMQX with camotp's HTTP hook) or derived (from the camera and server keys: mosquitto with dynamic security)")
	fs.StringVar(&f.serverKey, "server-key", "", "pin the provisioning server's key (base64) if none is pinned yet; refused if another is")
	fs.DurationVar(&f.waitSeed, "wait-seed", 0, "headless: first wait this long for a new seed to be delivered")
	fs.BoolVar(&f.follow, "follow", false, "headless: after the script, print the screen each time it changes until stopped (the default with --broker and no --script)")
	return c
}

func cameraRun(ctx context.Context, env Env, f cameraFlags) error {
	if f.dir == "" {
		return usagef("camera run: --state is required")
	}
	if f.testSeed != "" && f.broker != "" {
		return usagef("camera run: --test-seed never connects to a broker; drop --broker")
	}
	if f.waitSeed > 0 && f.broker == "" {
		return usagef("camera run: --wait-seed needs --broker")
	}
	if f.brokerAuth != provisioning.CredentialToken && f.brokerAuth != provisioning.CredentialDerived {
		return usagef("camera run: --broker-auth: want %s or %s", provisioning.CredentialToken, provisioning.CredentialDerived)
	}
	var pin []byte
	if f.serverKey != "" {
		var err error
		if pin, err = parseServerKey(f.serverKey); err != nil {
			return usageError{err}
		}
	}
	clock, err := f.buildClock()
	if err != nil {
		return err
	}
	serialPath, isSerial := strings.CutPrefix(f.ui, "serial:")
	if f.ui != "headless" && f.ui != "tui" && !isSerial {
		return usagef("camera run: unknown --ui %q (want tui, headless or serial:PATH)", f.ui)
	}
	if f.ui != "headless" && f.script != "" {
		return usagef("camera run: --script needs --ui headless")
	}
	var port string
	var baud int
	if isSerial {
		if port, baud, err = hw.ParseUI(serialPath); err != nil {
			return usageError{err}
		}
	}
	steps, err := emulator.ParseScript(f.script)
	if err != nil {
		return usageError{err}
	}
	st, err := device.OpenState(f.dir)
	if err != nil {
		return err
	}
	if pin != nil {
		if err := st.PinServerKey(pin); err != nil {
			return fmt.Errorf("--server-key: %w", err)
		}
	}
	if f.broker != "" && f.brokerAuth == provisioning.CredentialDerived && st.PinnedServerKey() == nil {
		return usagef("camera run: --broker-auth derived needs the server's key: pass --server-key (from 'camotp admin server-key')")
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
	startVersion := st.Version()
	// Seeds whose ack the broker has taken: with --wait-seed the camera
	// carries on (and may exit) only then, or the server never hears the proof.
	delivered := make(chan uint64, 16)
	var agent *provisioning.Agent
	if f.broker != "" {
		agent, err = startAgent(env, st, f, func(a provisioning.Ack) {
			if a.DeliversSeed() {
				select {
				case delivered <- a.Version:
				default:
				}
			}
		})
		if err != nil {
			return err
		}
		defer agent.Stop()
		cfg.Link = agent
	}
	switch {
	case isSerial:
		return runSerial(ctx, env, cfg, port, baud)
	case f.ui == "tui":
		cam, err := device.New(cfg)
		if err != nil {
			return err
		}
		screen, err := env.NewScreen()
		if err != nil {
			return fmt.Errorf("open terminal: %w", err)
		}
		status := ""
		if cfg.TestMode {
			status = "TEST SEED"
		}
		tui := emulator.NewTUI(screen, id.Model, id.Serial, clock, status)
		if agent != nil {
			tui.Link = agent
		}
		return tui.Run(ctx, cam)
	}
	if f.waitSeed > 0 {
		if err := waitForSeed(ctx, st, startVersion, f.waitSeed, delivered); err != nil {
			return err
		}
	}
	// A connected camera with nothing to play is a camera left running:
	// it follows its screen, as --follow does, until stopped.
	follow := f.follow || (f.broker != "" && f.script == "")
	return runHeadless(ctx, env, cfg, steps, follow)
}

// runHeadless plays steps on the camera and prints the screen; with follow
// it goes on in real time, printing the screen each time it changes, until
// ctx ends.
func runHeadless(ctx context.Context, env Env, cfg device.Config, steps []emulator.Step, follow bool) error {
	clock := cfg.Clock
	oc := &device.OffsetClock{Base: clock}
	cfg.Clock = oc
	cam, err := device.New(cfg)
	if err != nil {
		return err
	}
	end := emulator.Play(cam, oc, 0, steps)
	last := cam.Screen()
	if _, err := fmt.Fprintln(env.Stdout, last.Text()); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	// Follow: real time from here on; print every change.
	start := time.Now()
	oc.Shift = 0
	t := time.NewTicker(device.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cam.Tick(end + time.Since(start))
		if s := cam.Screen(); !s.Equal(last) {
			last = s
			if _, err := fmt.Fprintf(env.Stdout, "--- %s\n%s\n", clock.Now().UTC().Format(time.RFC3339), s.Text()); err != nil {
				return err
			}
		}
	}
}

// runSerial runs the camera with a serial-attached board as its panel.
func runSerial(ctx context.Context, env Env, cfg device.Config, port string, baud int) error {
	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	cam, err := device.New(cfg)
	if err != nil {
		return err
	}
	board, err := hw.Open(ctx, hw.Config{Path: port, Baud: baud, Log: log})
	if err != nil {
		return err
	}
	defer board.Close()
	log.Info("camera running on the board; Ctrl-C stops", "serial", cfg.Serial, "model", cfg.Model, "port", port, "baud", baud)
	return cam.Run(ctx, board)
}

// startAgent connects the camera to its fleet broker; logs go to stderr;
// applied is told each ack the broker acknowledged.
func startAgent(env Env, st *device.State, f cameraFlags, applied func(provisioning.Ack)) (*provisioning.Agent, error) {
	lc := provisioning.LinkConfig{Broker: f.broker, Credential: f.brokerAuth,
		Log: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if f.brokerCA != "" {
		pem, err := os.ReadFile(f.brokerCA)
		if err != nil {
			return nil, fmt.Errorf("--broker-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--broker-ca %s holds no PEM certificate", f.brokerCA)
		}
		lc.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	a := provisioning.NewAgent(st, lc)
	a.Applied = applied
	a.Start()
	return a, nil
}

// parseServerKey decodes a server key as 'camotp admin server-key' prints
// it: standard base64 of the 32-byte X25519 public key.
func parseServerKey(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != 32 {
		return nil, errors.New("--server-key: want the base64 of 32 bytes, as 'camotp admin server-key' prints it")
	}
	return raw, nil
}

// waitForSeed waits until a seed of a provisioning version newer than from
// is stored and its ack is with the broker (delivered says which versions).
func waitForSeed(ctx context.Context, st *device.State, from uint64, wait time.Duration, delivered <-chan uint64) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no seed was delivered to camera %s within %s", st.Identity().Serial, wait)
		case v := <-delivered:
			if v > from {
				return nil
			}
		}
	}
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
