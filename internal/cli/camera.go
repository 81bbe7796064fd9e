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
	"net"
	"net/http"
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
	return group("camera", "a camera: create its state (init), run it (run: tui, headless or a serial board), read its code (code)",
		cameraInitCmd(env), cameraRunCmd(env), cameraCodeCmd(env))
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
	follow, expectCode               bool
	control                          string
	reportEvery                      time.Duration
	reportClock                      device.Clock // the camera's clock, for its clock reports
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
each time it changes, until Ctrl-C. With --control ADDR (a loopback
address) it also serves a control API for QA while it runs: GET /screen,
POST /press {"button":"select","gesture":"press|double|long"}, GET /code
(the model's own button flow; 409 when it shows none), POST /clock
{"offset":"90s"} | {"ppm":50} | {"set":"RFC 3339"} — see docs/qa.md.`,
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
	fs.StringVar(&f.control, "control", "", "headless: serve the QA control API on this loopback address (e.g. 127.0.0.1:8099) and keep running")
	fs.BoolVar(&f.expectCode, "expect-code", false, "headless: exit 3 when the screen after the script shows no code")
	fs.DurationVar(&f.reportEvery, "clock-report-every", provisioning.DefaultClockReportEvery, "with --broker: ask the server for a clock challenge this often besides on each connect, and answer each with the camera's clock, signed (negative: never, challenges unanswered)")
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
	if f.ui != "headless" && (f.control != "" || f.expectCode) {
		return usagef("camera run: --control and --expect-code need --ui headless")
	}
	if f.control != "" {
		if f.control, err = loopbackAddr(f.control); err != nil {
			return usageError{fmt.Errorf("camera run: --control: %w", err)}
		}
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
	if clock, err = f.stateClock(st, clock); err != nil {
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
	startVersion := st.Version()
	// Seeds whose ack the broker has taken: with --wait-seed the camera
	// carries on (and may exit) only then, or the server never hears the proof.
	delivered := make(chan uint64, 16)
	var agent *provisioning.Agent
	if f.broker != "" {
		f.reportClock = clock
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
	if f.control != "" {
		return runControlled(ctx, env, cfg, steps, f.control, f.expectCode)
	}
	return runHeadless(ctx, env, cfg, steps, follow, f.expectCode)
}

// errNoCode is the exit-3 error of a camera that shows no code.
func errNoCode(s device.Screen) error {
	return exitError{exitNoCode, fmt.Errorf("the camera shows no code:\n%s", s.Text())}
}

// loopbackAddr checks that addr (HOST:PORT, or :PORT for 127.0.0.1) is on
// this machine's loopback: the control API hands out codes.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("want HOST:PORT on the loopback, e.g. 127.0.0.1:8099: %w", err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("%s is not a loopback address: the control API hands out the camera's codes, so it listens on 127.0.0.1, ::1 or localhost only", host)
	}
	return net.JoinHostPort(host, port), nil
}

// runControlled runs a camera QA drives through the control API on addr:
// it plays steps, prints the screen, serves the API and prints the screen
// each time it changes, until ctx ends.
func runControlled(ctx context.Context, env Env, cfg device.Config, steps []emulator.Step, addr string, expectCode bool) error {
	ctl, err := emulator.NewControlled(cfg)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if st.Kind == 0 {
			ctl.Clock().Shift(st.Wait)
			continue
		}
		ctl.Apply(device.Gesture{Kind: st.Kind, Button: st.Button})
	}
	last := ctl.Screen()
	if expectCode && last.Code == "" {
		return errNoCode(last)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &http.Server{Handler: emulator.ControlHandler(ctl, log), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 8 << 10}
	served := make(chan error, 1)
	go func() { served <- fmt.Errorf("control API: %w", srv.Serve(ln)) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(env.Stderr, "camotp: control API on http://%s (GET /screen, POST /press, GET /code, POST /clock)\n", ln.Addr())
	if _, err := fmt.Fprintln(env.Stdout, last.Text()); err != nil {
		return err
	}
	return followScreen(ctx, env, last, ctl.Screen, ctl.Clock(), served)
}

// followScreen prints the camera's screen, stamped with its clock, each time it
// differs from last, until ctx ends or stop delivers an error; screen
// reads it now (after bringing the camera's timers to now).
func followScreen(ctx context.Context, env Env, last device.Screen, screen func() device.Screen, clock device.Clock, stop <-chan error) error {
	t := time.NewTicker(device.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-stop:
			return err
		case <-t.C:
		}
		if s := screen(); !s.Equal(last) {
			last = s
			if _, err := fmt.Fprintf(env.Stdout, "--- %s\n%s\n", clock.Now().UTC().Format(time.RFC3339), s.Text()); err != nil {
				return err
			}
		}
	}
}

func cameraCodeCmd(env Env) *cobra.Command {
	var f cameraFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "code --state DIR [--json]",
		Short: "print the code the camera shows now, read through its model's own buttons (offline); exit 3 when it shows none",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.StringVar(&f.dir, "state", "", "camera state directory")
	fs.BoolVar(&asJSON, "json", false, `print {"code","expiresIn","model"}`)
	fs.StringVar(&f.clock, "clock", "", "QA: fixed camera time (RFC 3339)")
	fs.DurationVar(&f.offset, "clock-offset", 0, "QA: camera clock offset (e.g. 45s, -2m)")
	fs.Float64Var(&f.ppm, "clock-ppm", 0, "QA: camera clock drift in parts per million")
	c.RunE = func(*cobra.Command, []string) error {
		if f.dir == "" {
			return usagef("camera code: --state is required")
		}
		clock, err := f.buildClock()
		if err != nil {
			return err
		}
		st, err := device.OpenState(f.dir)
		if err != nil {
			return err
		}
		if clock, err = f.stateClock(st, clock); err != nil {
			return err
		}
		id := st.Identity()
		ctl, err := emulator.NewControlled(device.Config{Serial: id.Serial, Model: id.Model, Clock: clock, Seeds: st})
		if err != nil {
			return err
		}
		s, err := ctl.Code()
		if nc := (*emulator.ErrNoCode)(nil); errors.As(err, &nc) {
			return exitError{exitNoCode, fmt.Errorf("camera %s shows no code: %s", id.Serial, nc.Reason)}
		}
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(env.Stdout).Encode(emulator.CodeAnswer{Code: s.Code, ExpiresIn: s.Remaining, Model: string(id.Model)})
		}
		_, err = fmt.Fprintln(env.Stdout, s.Code)
		return err
	}
	return c
}

// runHeadless plays steps on the camera and prints the screen (exit 3
// when expectCode and it shows no code); with follow
// it goes on in real time, printing the screen each time it changes, until
// ctx ends.
func runHeadless(ctx context.Context, env Env, cfg device.Config, steps []emulator.Step, follow, expectCode bool) error {
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
	if expectCode && last.Code == "" {
		return errNoCode(last)
	}
	if !follow {
		return nil
	}
	// Follow: real time from here on; print every change.
	start := time.Now()
	oc.Shift = 0
	return followScreen(ctx, env, last, func() device.Screen {
		cam.Tick(end + time.Since(start))
		return cam.Screen()
	}, clock, nil)
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
	lc := provisioning.LinkConfig{Broker: f.broker, Credential: f.brokerAuth, ClockReportEvery: f.reportEvery, ReportClock: f.reportClock,
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

// stateClock is clock as the camera's own simulated drift makes it run
// (fleet-sim --clock-ppm-spread), unless --clock-offset or --clock-ppm
// say otherwise.
func (f cameraFlags) stateClock(st *device.State, clock device.Clock) (device.Clock, error) {
	if f.offset != 0 || f.ppm != 0 {
		return clock, nil
	}
	d, ok, err := st.SimulatedDrift()
	if err != nil || !ok {
		return clock, err
	}
	return d.Clock(clock), nil
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
