package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/emulator"
	"github.com/camotp/camotp/internal/demo"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/oidc"
)

// demoCmd is camotp demo: the whole product on this machine.
func demoCmd(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "demo [--headless] [--camera SERIAL]",
		Short: "the whole product: server, demo officers and admin, provisioned cameras, the emulator of one",
		Args:  noArgs,
	}
	fs := c.Flags()
	var cfg demo.Config
	fs.StringVar(&cfg.DataDir, "data", ".camotp", "data directory (created on first run, reused after)")
	fs.StringVar(&cfg.HTTPAddr, "http", defaultHTTP, "HTTP listen address")
	fs.StringVar(&cfg.MQTTAddr, "mqtt", defaultMQTT, "MQTT listen address")
	fs.StringVar(&cfg.RADIUSAddr, "radius", defaultRADIUS, "RADIUS (UDP) listen address, with a demo client for 127.0.0.1 (\"\": off; a busy port turns it off with a note)")
	fs.StringVar(&cfg.Issuer, "issuer", "", "OpenID Connect issuer URL (default http://HTTP-ADDR; \"off\" turns the provider off)")
	headless := fs.Bool("headless", false, "no terminal UI: print each camera's code every step")
	camera := fs.String("camera", "", "serial of the camera to show in the emulator (default: the first)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemo(cmd.Context(), env, cfg, *headless, *camera)
	}
	return c
}

// runDemo starts the demo and shows the camera of serial camera ("": the
// first) in the emulator, or every camera's codes when headless.
func runDemo(ctx context.Context, env Env, cfg demo.Config, headless bool, camera string) error {
	switch cfg.Issuer {
	case "":
		cfg.Issuer = "http://" + cfg.HTTPAddr
	case "off":
		cfg.Issuer = ""
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", cfg.DataDir, err)
	}
	logPath := filepath.Join(cfg.DataDir, "camotp.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logFile.Close()
	cfg.Log = slog.New(slog.NewTextHandler(logFile, nil))
	cfg.MasterKeyEnv = env.Getenv(masterkey.EnvVar)

	fmt.Fprintf(env.Stdout, "camotp demo: starting the server and provisioning the demo cameras (log: %s)…\n", logPath)
	d, err := demo.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	shown := d.Cameras[0]
	if camera != "" {
		found := false
		for _, c := range d.Cameras {
			if c.Officer.Serial == camera {
				shown, found = c, true
			}
		}
		if !found {
			return usagef("demo: no demo camera %q (have %s)", camera, serialsOf(d))
		}
	}
	if headless {
		fmt.Fprintln(env.Stdout, strings.Join(introLines(d, nil, cfg.DataDir), "\n"))
		return printCodes(ctx, env.Stdout, d)
	}
	intro := introLines(d, &shown, cfg.DataDir)
	fmt.Fprintln(env.Stdout, strings.Join(intro, "\n"))
	screen, err := env.NewScreen()
	if err != nil {
		return fmt.Errorf("open terminal (use --headless without one): %w", err)
	}
	id := shown.State.Identity()
	cam, err := device.New(device.Config{Serial: id.Serial, Model: id.Model, Seeds: shown.State, Link: shown.Agent})
	if err != nil {
		return err
	}
	tui := emulator.NewTUI(screen, id.Model, id.Serial, device.SystemClock{}, "")
	tui.Link = shown.Agent // read at every frame: the footer follows the link
	tui.Notes = intro[1 : 2+len(d.Cameras)]
	err = tui.Run(ctx, cam)
	fmt.Fprintln(env.Stdout, strings.Join(intro, "\n"))
	return err
}

func serialsOf(d *demo.Demo) string {
	var s []string
	for _, c := range d.Cameras {
		s = append(s, c.Officer.Serial)
	}
	return strings.Join(s, ", ")
}

// introLines say how to use the demo: the sign-in URL, then one line per
// demo user (lines[1:2+len(d.Cameras)], the emulator's notes), then the
// rest. shown is the camera in the emulator (nil: headless).
func introLines(d *demo.Demo, shown *demo.Camera, dataDir string) []string {
	base := "http://" + d.Server.HTTPAddr()
	lines := []string{
		"",
		fmt.Sprintf("Sign in at %s/login — admin console: /admin (user %s)", base, demo.AdminUsername),
	}
	for _, c := range d.Cameras {
		lines = append(lines, fmt.Sprintf("  %-14s password %-16s camera %s (%s)", c.Officer.Username, c.Officer.Password, c.Officer.Serial, c.Officer.Model.DisplayName()))
	}
	if shown != nil {
		lines = append(lines, fmt.Sprintf("Emulator shows %s. Other camera: camotp demo --camera SERIAL (make run CAMERA=SERIAL).", shown.Officer.Serial))
	}
	lines = append(lines,
		fmt.Sprintf("Codes sent by text, call or email: %s/dev/outbox", base),
		fmt.Sprintf("Admin: CAMOTP_ADMIN_TOKEN=$(cat %s/admin-token) camotp admin camera list", dataDir))
	if c := d.Client; c != nil {
		iss := d.Server.OIDC.Issuer()
		q := url.Values{"client_id": {c.ID}, "response_type": {"code"}, "scope": {"openid profile email"},
			"redirect_uri": {c.RedirectURI}, "state": {"demo-state"}, "nonce": {"demo-nonce"}}
		lines = append(lines,
			fmt.Sprintf("OpenID Connect: issuer %s (discovery %s%s)", iss, iss, oidc.PathDiscovery),
			fmt.Sprintf("  demo client %s, secret %s, redirect URI %s", c.ID, c.Secret, c.RedirectURI),
			fmt.Sprintf("  try it: open %s%s?%s", iss, oidc.PathAuthorize, q.Encode()),
			"  sign in; the browser lands on the redirect URI with ?code=CODE (nothing listens there), then:",
			fmt.Sprintf("  curl -su %s:%s -d grant_type=authorization_code -d redirect_uri=%s -d code=CODE %s%s", c.ID, c.Secret, c.RedirectURI, iss, oidc.PathToken))
	}
	lines = append(lines, radiusLines(d)...)
	return append(lines, "")
}

// radiusLines say how to try the demo's RADIUS server with radclient.
func radiusLines(d *demo.Demo) []string {
	if d.RADIUSNote != "" {
		return []string{d.RADIUSNote}
	}
	addr := d.Server.RADIUSAddr()
	if addr == "" {
		return nil
	}
	o := d.Cameras[0].Officer
	return []string{
		fmt.Sprintf("RADIUS at %s, client %s (127.0.0.1), shared secret %s — try it (Debian freeradius-utils):", addr, demo.RADIUSClient, d.RADIUSSecret),
		fmt.Sprintf(`  echo 'User-Name = "%s", User-Password = "%s", Message-Authenticator = 0x00' | radclient -x %s auth %s`, o.Username, o.Password, addr, d.RADIUSSecret),
		`  → Access-Challenge: send again with User-Password = "<code>" and the State = 0x… it printed; or in one request: User-Password = "` + o.Password + `,<code>"`,
	}
}

// printCodes prints every camera's current code at each step until ctx ends.
func printCodes(ctx context.Context, w io.Writer, d *demo.Demo) error {
	last := map[string]string{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		now := time.Now()
		for _, c := range d.Cameras {
			code := shownCode(c, now)
			if last[c.Officer.Serial] != code {
				last[c.Officer.Serial] = code
				fmt.Fprintf(w, "%s %s %-14s %s\n", now.UTC().Format(time.RFC3339), c.Officer.Serial, c.Officer.Username, code)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// shownCode is what the camera's Authenticator screen shows at now.
func shownCode(c demo.Camera, now time.Time) string {
	id := c.State.Identity()
	cam, err := device.New(device.Config{Serial: id.Serial, Model: id.Model, Clock: device.FixedClock{T: now}, Seeds: c.State})
	if err != nil {
		return "error: " + err.Error()
	}
	cam.Apply(id.Model.MenuGesture())
	cam.Apply(device.Gesture{Kind: device.Press, Button: device.VolDown})
	cam.Apply(device.Gesture{Kind: device.Press, Button: device.Select})
	if s := cam.Screen(); s.Code != "" {
		return s.Code
	}
	return "(not provisioned)"
}
