package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// adminClient calls the admin API.
type adminClient struct {
	bases []string      // the nodes of one installation, tried in turn
	cur   *atomic.Int64 // index of the node in use
	token string
	http  *http.Client
}

// newAdminClient returns a client for the nodes at bases (one or more URLs
// of one installation).
func newAdminClient(bases []string, token string, hc *http.Client) adminClient {
	return adminClient{bases: bases, cur: new(atomic.Int64), token: token, http: hc}
}

// failover moves to the next node after a call to the one at index i
// found it down (once per failure, whatever the calls in flight).
func (c adminClient) failover(i int64) {
	if len(c.bases) > 1 {
		c.cur.CompareAndSwap(i, (i+1)%int64(len(c.bases)))
	}
}

// apiError is a non-2xx answer.
type apiError struct {
	status int
	msg    string
}

func (e apiError) Error() string { return fmt.Sprintf("server answered %d: %s", e.status, e.msg) }

func (c adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	i := c.cur.Load() % int64(len(c.bases))
	base := c.bases[i]
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.failover(i) // the next try goes to another node
		}
		return fmt.Errorf("reach camotp server at %s: %w", base, err)
	}
	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout {
		c.failover(i)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e httpx.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return apiError{resp.StatusCode, e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// adminFlags adds --server and --token-file to fs; the returned function
// builds the admin client once fs is parsed.
func adminFlags(fs *flag.FlagSet) func(Env) (adminClient, error) {
	base := fs.String("server", defaultServer, "camotp server URL; several nodes of one installation as URL,URL,… (a node that is down or answers 502-504 hands over to the next)")
	tokenFile := fs.String("token-file", "", "admin token file (default: env CAMOTP_ADMIN_TOKEN, else .camotp/admin-token)")
	return func(env Env) (adminClient, error) {
		token := env.Getenv("CAMOTP_ADMIN_TOKEN")
		if *tokenFile != "" || token == "" {
			path := *tokenFile
			if path == "" {
				path = filepath.Join(".camotp", server.AdminTokenFile)
			}
			t, err := readTokenFile(path)
			if err != nil {
				return adminClient{}, fmt.Errorf("%w (set CAMOTP_ADMIN_TOKEN or --token-file)", err)
			}
			token = t
		}
		var bases []string
		for _, b := range strings.Split(*base, ",") {
			if b = strings.TrimRight(strings.TrimSpace(b), "/"); b != "" {
				bases = append(bases, b)
			}
		}
		if len(bases) == 0 {
			return adminClient{}, usagef("--server: want a URL")
		}
		return newAdminClient(bases, token, &http.Client{Timeout: 30 * time.Second}), nil
	}
}

func runAdmin(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "admin")
	client := adminFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, `usage: camotp admin [--server URL] [--token-file F] COMMAND
  camera add --serial SN --model M --public-key K
  camera provision SN [--wait 30s] | rotate SN [--wait D] | wipe SN [--wait D]
  camera assign SN --user U | unassign SN | list [--json] | show SN
  user add U --email E [--phone P] [--role admin] --password-stdin
  user list [--json] [--without-mfa] | password U --password-stdin | forget-devices U | reset-mfa U
  org show | methods --enable M[,M...] | require-mfa on|off
  radius add-client --name N --cidr CIDR [--json] | list [--json] | remove N
  oidc add-client --id ID --redirect-uri URI [--redirect-uri URI...] [--public] [--json]
  oidc list [--json] | remove ID | rotate-key [--alg RS256|ES256]
  server-key   (the key cameras pin: camotp camera init --server-key)
  outbox   (development outbox of serve --dev-outbox / camotp demo)
  audit [--subject S]`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usagef("admin: want a command")
	}
	c, err := client(env)
	if err != nil {
		return err
	}
	switch rest[0] {
	case "camera":
		return adminCamera(ctx, env, c, rest[1:])
	case "user":
		return adminUser(ctx, env, c, rest[1:])
	case "org":
		return adminOrg(ctx, env, c, rest[1:])
	case "radius":
		return adminRadius(ctx, env, c, rest[1:])
	case "oidc":
		return adminOIDC(ctx, env, c, rest[1:])
	case "outbox":
		if err := parse(newFlags(env, "admin outbox"), rest[1:], 0); err != nil {
			return err
		}
		var msgs []model.OutboxMessage
		if err := c.do(ctx, "GET", "/api/v1/admin/outbox", nil, &msgs); err != nil {
			var ae apiError
			if errors.As(err, &ae) && ae.status == http.StatusNotFound {
				return fmt.Errorf("the server keeps no outbox (it sends for real; the outbox is for serve --dev-outbox and camotp demo)")
			}
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tCHANNEL\tTO\tMESSAGE")
		for _, m := range msgs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.At.Format(time.RFC3339), m.Channel, m.Address, m.Body)
		}
		return tw.Flush()
	case "server-key":
		if err := parse(newFlags(env, "admin server-key"), rest[1:], 0); err != nil {
			return err
		}
		var k provisioning.ServerKeyResponse
		if err := c.do(ctx, "GET", provisioning.ServerKeyPath, nil, &k); err != nil {
			return err
		}
		_, err := fmt.Fprintln(env.Stdout, base64.StdEncoding.EncodeToString(k.ServerKey))
		return err
	case "audit":
		f := newFlags(env, "admin audit")
		subject := f.String("subject", "", "only entries about this serial or user")
		if err := parse(f, rest[1:], 0); err != nil {
			return err
		}
		var entries []model.AuditEntry
		if err := c.do(ctx, "GET", "/api/v1/admin/audit?subject="+url.QueryEscape(*subject), nil, &entries); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tSUBJECT\tRESULT\tSOURCE\tDETAIL")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail)
		}
		return tw.Flush()
	}
	return usagef("admin: unknown command %q (want camera, user, org, oidc, radius, outbox or audit)", rest[0])
}

// positional splits "SN --flag v" style args: the first non-flag argument
// may come before the flags.
func positional(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func adminCamera(ctx context.Context, env Env, c adminClient, args []string) error {
	if len(args) == 0 {
		return usagef("admin camera: want add, provision, rotate, wipe, assign, unassign, list or show")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		f := newFlags(env, "admin camera add")
		var req provisioning.CameraRequest
		f.StringVar(&req.Serial, "serial", "", "serial number")
		f.StringVar(&req.Model, "model", "", "body4, body3 or workforce")
		f.StringVar(&req.PublicKey, "public-key", "", "the camera's publicKey from 'camotp camera init'")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		if req.Serial == "" || req.Model == "" || req.PublicKey == "" {
			return usagef("admin camera add: --serial, --model and --public-key are required")
		}
		var cam model.Camera
		if err := c.do(ctx, "POST", "/api/v1/admin/cameras", req, &cam); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "camera %s (%s) registered\n", cam.Serial, cam.Model)
		return nil
	case "provision", "rotate", "wipe":
		serial, rest := positional(args)
		f := newFlags(env, "admin camera "+sub)
		wait := f.Duration("wait", 30*time.Second, "wait this long for the camera's proof (0: do not wait)")
		if err := parse(f, rest, 0); err != nil {
			return err
		}
		if serial == "" {
			return usagef("admin camera %s: want a serial", sub)
		}
		var resp provisioning.OpResponse
		if err := c.do(ctx, "POST", "/api/v1/admin/cameras/"+url.PathEscape(serial)+"/"+sub, nil, &resp); err != nil {
			return err
		}
		if *wait <= 0 {
			fmt.Fprintf(env.Stdout, "camera %s: %s version %d sent; not waiting for the proof\n", serial, sub, resp.Version)
			return nil
		}
		return waitProof(ctx, env, c, serial, resp, *wait)
	case "assign":
		serial, rest := positional(args)
		f := newFlags(env, "admin camera assign")
		user := f.String("user", "", "username")
		if err := parse(f, rest, 0); err != nil {
			return err
		}
		if serial == "" || *user == "" {
			return usagef("admin camera assign: want SN --user U")
		}
		if err := c.do(ctx, "POST", "/api/v1/admin/cameras/"+url.PathEscape(serial)+"/assign", provisioning.AssignRequest{User: *user}, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "camera %s assigned to %s\n", serial, *user)
		return nil
	case "unassign", "show":
		serial, rest := positional(args)
		if serial == "" || len(rest) > 0 {
			return usagef("admin camera %s: want exactly one serial", sub)
		}
		var cam model.Camera
		if sub == "unassign" {
			if err := c.do(ctx, "POST", "/api/v1/admin/cameras/"+url.PathEscape(serial)+"/unassign", nil, &cam); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "camera %s unassigned\n", serial)
			return nil
		}
		if err := c.do(ctx, "GET", "/api/v1/admin/cameras/"+url.PathEscape(serial), nil, &cam); err != nil {
			return err
		}
		return writeJSON(env.Stdout, cam)
	case "list":
		f := newFlags(env, "admin camera list")
		asJSON := f.Bool("json", false, "print JSON")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		var cams []model.Camera
		if err := c.do(ctx, "GET", "/api/v1/admin/cameras", nil, &cams); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, cams)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tMODEL\tSTATE\tVERSION\tUSER\tLAST SEEN")
		for _, cam := range cams {
			state := string(cam.State)
			if cam.PendingOp != "" && cam.State == model.StateProvisioned {
				state += " (" + string(cam.PendingOp) + " pending)"
			}
			seen := "never"
			if cam.LastSeen != nil {
				seen = cam.LastSeen.Format(time.RFC3339)
			}
			user := cam.AssignedUser
			if user == "" {
				user = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", cam.Serial, cam.Model, state, cam.Version, user, seen)
		}
		return tw.Flush()
	}
	return usagef("admin camera: unknown command %q", sub)
}

// waitProof polls until the operation's proof is verified. On a terminal
// it shows the camera's state as it goes; on timeout it names the last
// state the server reported.
func waitProof(ctx context.Context, env Env, c adminClient, serial string, op provisioning.OpResponse, wait time.Duration) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	tty := isTerminal(env.Stderr)
	start := time.Now()
	var last *model.Camera // the last answer; a poll cut short by the deadline leaves it alone
	for {
		var cam model.Camera
		err := c.do(ctx, "GET", "/api/v1/admin/cameras/"+url.PathEscape(serial), nil, &cam)
		if err != nil && ctx.Err() == nil {
			if tty {
				fmt.Fprintln(env.Stderr)
			}
			return err
		}
		if err == nil {
			last = &cam
			if cam.Version >= op.Version && cam.PendingOp == "" {
				if tty {
					fmt.Fprint(env.Stderr, "\r\033[K")
				}
				fmt.Fprintf(env.Stdout, "camera %s: %s version %d proven; state %s\n", serial, op.Op, op.Version, cam.State)
				return nil
			}
		}
		if tty {
			fmt.Fprintf(env.Stderr, "\r\033[Kcamera %s: waiting for the proof of %s version %d: %s  %s/%s",
				serial, op.Op, op.Version, describeCamera(last), time.Since(start).Round(time.Second), wait)
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(env.Stderr)
			}
			if parent.Err() != nil {
				return fmt.Errorf("camera %s: stopped waiting for the proof of %s version %d (%s)", serial, op.Op, op.Version, describeCamera(last))
			}
			return fmt.Errorf("camera %s did not prove %s version %d within %s (%s): is the camera online? the command stays queued and is resent when it connects",
				serial, op.Op, op.Version, wait, describeCamera(last))
		case <-tick.C:
		}
	}
}

// describeCamera names a camera's state as the server reported it.
func describeCamera(cam *model.Camera) string {
	if cam == nil {
		return "state unknown: the server did not answer in time"
	}
	d := "state " + string(cam.State)
	if cam.PendingOp != "" {
		d += ", " + string(cam.PendingOp) + " pending"
	}
	if cam.LastSeen != nil {
		d += ", camera last seen " + cam.LastSeen.Format(time.RFC3339)
	} else {
		d += ", camera never seen"
	}
	return d
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func adminUser(ctx context.Context, env Env, c adminClient, args []string) error {
	if len(args) == 0 {
		return usagef("admin user: want add, list, password or forget-devices")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		name, rest := positional(args)
		f := newFlags(env, "admin user add")
		var req provisioning.UserRequest
		f.StringVar(&req.Email, "email", "", "email address")
		f.StringVar(&req.Phone, "phone", "", "phone number")
		f.StringVar(&req.Role, "role", "", "user (default) or admin")
		fromStdin := f.Bool("password-stdin", false, "read the password from standard input")
		if err := parse(f, rest, 0); err != nil {
			return err
		}
		if name == "" || req.Email == "" || !*fromStdin {
			return usagef("admin user add: want U --email E --password-stdin")
		}
		pw, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		req.Username, req.Password = name, strings.TrimRight(string(pw), "\r\n")
		if err := c.do(ctx, "POST", "/api/v1/admin/users", req, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "user %s added\n", name)
		return nil
	case "password":
		name, rest := positional(args)
		f := newFlags(env, "admin user password")
		fromStdin := f.Bool("password-stdin", false, "read the new password from standard input")
		if err := parse(f, rest, 0); err != nil {
			return err
		}
		if name == "" || !*fromStdin {
			return usagef("admin user password: want U --password-stdin")
		}
		pw, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		if err := c.do(ctx, "POST", "/api/v1/admin/users/"+url.PathEscape(name)+"/password", provisioning.PasswordRequest{Password: strings.TrimRight(string(pw), "\r\n")}, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "password of %s changed; their sessions and trusted browsers are ended\n", name)
		return nil
	case "forget-devices":
		name, rest := positional(args)
		if name == "" || len(rest) > 0 {
			return usagef("admin user forget-devices: want exactly one username")
		}
		if err := c.do(ctx, "POST", "/api/v1/admin/users/"+url.PathEscape(name)+"/forget-devices", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "sessions, trusted browsers and registered MFA methods of %s ended\n", name)
		return nil
	case "reset-mfa":
		name, rest := positional(args)
		if name == "" || len(rest) > 0 {
			return usagef("admin user reset-mfa: want exactly one username")
		}
		if err := c.do(ctx, "POST", "/api/v1/admin/users/"+url.PathEscape(name)+"/reset-mfa", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "MFA of %s reset: authenticator app, backup codes and trusted browsers removed\n", name)
		return nil
	case "list":
		f := newFlags(env, "admin user list")
		asJSON := f.Bool("json", false, "print JSON")
		without := f.Bool("without-mfa", false, "only users with no method to pass MFA with")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		if *without {
			var list []signin.UserMFA
			if err := c.do(ctx, "GET", "/api/v1/admin/mfa/users?without=1", nil, &list); err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(env.Stdout, list)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tCAN SET UP")
			for _, u := range list {
				fmt.Fprintf(tw, "%s\t%s\n", u.Username, orDash(strings.Join(u.Methods.CanSetUp, ",")))
			}
			return tw.Flush()
		}
		var users []model.User
		if err := c.do(ctx, "GET", "/api/v1/admin/users", nil, &users); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, users)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tEMAIL\tROLE\tCAMERA")
		for _, u := range users {
			cam := u.Camera
			if cam == "" {
				cam = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Email, u.Role, cam)
		}
		return tw.Flush()
	}
	return usagef("admin user: unknown command %q", sub)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// adminOrg shows and changes the organisation's MFA policy.
func adminOrg(ctx context.Context, env Env, c adminClient, args []string) error {
	if len(args) == 0 {
		return usagef("admin org: want show, methods or require-mfa")
	}
	var pol signin.Policy
	if err := c.do(ctx, "GET", "/api/v1/admin/org/policy", nil, &pol); err != nil {
		return err
	}
	switch args[0] {
	case "show":
		if len(args) > 1 {
			return usagef("admin org show: no arguments")
		}
	case "methods":
		f := newFlags(env, "admin org methods")
		enable := f.String("enable", "", "comma-separated methods to enable ("+strings.Join(signin.OrgMethods, ", ")+"); the others are disabled")
		if err := parse(f, args[1:], 0); err != nil {
			return err
		}
		if *enable == "" {
			return usagef("admin org methods: want --enable M[,M...]")
		}
		pol.Methods = strings.Split(*enable, ",")
		if err := pol.Validate(); err != nil {
			return usageError{err}
		}
		if err := c.do(ctx, "PUT", "/api/v1/admin/org/policy", pol, &pol); err != nil {
			return err
		}
	case "require-mfa":
		if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
			return usagef("admin org require-mfa: want on or off")
		}
		pol.RequireMFA = args[1] == "on"
		if err := c.do(ctx, "PUT", "/api/v1/admin/org/policy", pol, &pol); err != nil {
			return err
		}
	default:
		return usagef("admin org: unknown command %q (want show, methods or require-mfa)", args[0])
	}
	req := "off"
	if pol.RequireMFA {
		req = "on"
	}
	fmt.Fprintf(env.Stdout, "methods: %s\nrequire MFA: %s\n", strings.Join(pol.Methods, ","), req)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
