package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/provisioning"
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

// adminTarget is the server admin commands talk to: the --server and
// --token-file flags of admin and fleet-sim.
type adminTarget struct {
	server, tokenFile string
}

// addFlags adds --server and --token-file to fs.
func (t *adminTarget) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&t.server, "server", defaultServer, "camotp server URL; several nodes of one installation as URL,URL,… (a node that is down or answers 502-504 hands over to the next)")
	fs.StringVar(&t.tokenFile, "token-file", "", "admin token file (default: env CAMOTP_ADMIN_TOKEN, else .camotp/admin-token)")
}

// client builds the admin client once the flags are parsed.
func (t *adminTarget) client(env Env) (adminClient, error) {
	token := env.Getenv("CAMOTP_ADMIN_TOKEN")
	if t.tokenFile != "" || token == "" {
		path := t.tokenFile
		if path == "" {
			path = filepath.Join(".camotp", server.AdminTokenFile)
		}
		tok, err := readTokenFile(path)
		if err != nil {
			return adminClient{}, fmt.Errorf("%w (set CAMOTP_ADMIN_TOKEN or --token-file)", err)
		}
		token = tok
	}
	var bases []string
	for _, b := range strings.Split(t.server, ",") {
		if b = strings.TrimRight(strings.TrimSpace(b), "/"); b != "" {
			bases = append(bases, b)
		}
	}
	if len(bases) == 0 {
		return adminClient{}, usagef("--server: want a URL")
	}
	return newAdminClient(bases, token, &http.Client{Timeout: 30 * time.Second}), nil
}

// adminCmd is camotp admin: fleet administration over the admin API.
func adminCmd(env Env) *cobra.Command {
	t := &adminTarget{}
	c := group("admin", "fleet administration over the admin API: camera, user, org, radius, oidc, outbox, server-key, audit",
		adminCameraCmd(env, t),
		adminUserCmd(env, t),
		adminOrgCmd(env, t),
		adminRadiusCmd(env, t),
		adminOIDCCmd(env, t),
		adminOutboxCmd(env, t),
		adminServerKeyCmd(env, t),
		adminAuditCmd(env, t),
	)
	c.Long = `Fleet administration over the admin API of a camotp server (--server),
authenticated by the admin token (env CAMOTP_ADMIN_TOKEN, --token-file, or
.camotp/admin-token as serve writes it).`
	t.addFlags(c.PersistentFlags())
	return c
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
