package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/provisioning"
)

// parseWhen reads --since/--until: an RFC 3339 time, or a duration (24h,
// 90m) meaning that long before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-01T00:00:00Z) or a duration before now (24h)", s)
	}
	return now.Add(-d).UTC(), nil
}

// adminAuditExportCmd is camotp admin audit export: the filtered rows as
// JSON Lines or CSV, streamed.
func adminAuditExportCmd(env Env, t *adminTarget) *cobra.Command {
	var since, until, subject, actor, action, result, source, format, out string
	c := &cobra.Command{
		Use:   "export --since T [--until T] [--subject S] [--actor A] [--action A] --format jsonl|csv [--out FILE]",
		Short: "export audit rows as JSON Lines or CSV (chain, seq and MAC included), streamed from the server",
		Args:  noArgs,
	}
	fs := c.Flags()
	fs.StringVar(&since, "since", "", "rows from this time on: RFC 3339 (2026-11-01T00:00:00Z) or a duration before now (24h) (required)")
	fs.StringVar(&until, "until", "", "rows before this time: RFC 3339 or a duration before now (default: now)")
	fs.StringVar(&subject, "subject", "", "only rows about this serial or user (a trailing * matches a prefix)")
	fs.StringVar(&actor, "actor", "", "only rows of this actor (a trailing * matches a prefix)")
	fs.StringVar(&action, "action", "", "only rows of this action, e.g. login.mfa or camera.* ")
	fs.StringVar(&result, "result", "", "only rows with this result, e.g. ok or error:*")
	fs.StringVar(&source, "source", "", "only rows from this source IP address")
	fs.StringVar(&format, "format", "", "jsonl or csv (required)")
	fs.StringVar(&out, "out", "", "write to this file (mode 0600, replaced only once the whole export arrived) instead of standard output")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if since == "" || format == "" {
			return usagef("admin audit export: --since and --format are required")
		}
		if format != "jsonl" && format != "csv" {
			return usagef("admin audit export: --format: want jsonl or csv, got %q", format)
		}
		now := time.Now()
		q := url.Values{"format": {format}}
		from, err := parseWhen(since, now)
		if err != nil {
			return usagef("admin audit export: --since %v", err)
		}
		q.Set("since", from.Format(time.RFC3339Nano))
		if until != "" {
			to, err := parseWhen(until, now)
			if err != nil {
				return usagef("admin audit export: --until %v", err)
			}
			q.Set("until", to.Format(time.RFC3339Nano))
		}
		for k, v := range map[string]string{"subject": subject, "actor": actor, "action": action, "result": result, "source": source} {
			if v != "" {
				q.Set(k, v)
			}
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		body, err := ac.stream(cmd.Context(), provisioning.AuditExportPath+"?"+q.Encode())
		if err != nil {
			return err
		}
		defer body.Close()
		if out == "" {
			if _, err := io.Copy(env.Stdout, body); err != nil {
				return fmt.Errorf("audit export cut short: %w", err)
			}
			return nil
		}
		return writeFileFrom(out, body)
	}
	return c
}

// stream GETs path from the server and returns the body of a 2xx answer
// as it arrives (no time bound on the body: an export of a large log
// takes a while; the server bounds it).
func (c adminClient) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	i := c.cur.Load() % int64(len(c.bases))
	base := c.bases[i]
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 30 * time.Second}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach camotp server at %s: %w", base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e httpx.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, apiError{resp.StatusCode, e.Error}
	}
	return resp.Body, nil
}

// writeFileFrom writes r to path, mode 0600: into a temporary file beside
// it, renamed over path only once r ended cleanly, so a cut export never
// leaves a short file under the name asked for.
func writeFileFrom(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if _, err := io.Copy(tmp, r); err != nil {
		return fmt.Errorf("audit export cut short (%s not written): %w", path, err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	ok = true
	return nil
}
