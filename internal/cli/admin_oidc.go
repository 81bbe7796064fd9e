package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/oidc"
)

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// adminOIDC registers OpenID Connect clients and rotates the signing key.
func adminOIDC(ctx context.Context, env Env, c adminClient, args []string) error {
	if len(args) == 0 {
		return usagef("admin oidc: want add-client, list, remove or rotate-key")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add-client":
		f := newFlags(env, "admin oidc add-client")
		var req oidc.ClientRequest
		var uris multiFlag
		f.StringVar(&req.ID, "id", "", "client ID (the application's client_id)")
		f.Var(&uris, "redirect-uri", "redirect URI, matched exactly (repeat for more; https, or http on loopback)")
		f.BoolVar(&req.Public, "public", false, "a public client (no secret; PKCE S256 required)")
		asJSON := f.Bool("json", false, "print JSON")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		if req.ID == "" || len(uris) == 0 {
			return usagef("admin oidc add-client: want --id ID --redirect-uri URI")
		}
		req.RedirectURIs = uris
		for _, u := range uris {
			if err := oidc.CheckRedirectURI(u); err != nil {
				return usageError{err}
			}
		}
		var resp oidc.ClientResponse
		if err := c.do(ctx, "POST", "/api/v1/admin/oidc/clients", req, &resp); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, resp)
		}
		fmt.Fprintf(env.Stdout, "client %s registered (%s)\n", resp.ID, kindOf(resp.OIDCClient))
		if resp.Secret != "" {
			fmt.Fprintf(env.Stdout, "client secret (shown once, only its hash is kept): %s\n", resp.Secret)
		}
		return nil
	case "list":
		f := newFlags(env, "admin oidc list")
		asJSON := f.Bool("json", false, "print JSON")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		var list []model.OIDCClient
		if err := c.do(ctx, "GET", "/api/v1/admin/oidc/clients", nil, &list); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT\tKIND\tREDIRECT URIS")
		for _, cl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cl.ID, kindOf(cl), strings.Join(cl.RedirectURIs, " "))
		}
		return tw.Flush()
	case "remove":
		id, rest := positional(args)
		if id == "" || len(rest) > 0 {
			return usagef("admin oidc remove: want exactly one client ID")
		}
		if err := c.do(ctx, "DELETE", "/api/v1/admin/oidc/clients/"+url.PathEscape(id), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "client %s removed; its codes and access tokens no longer work\n", id)
		return nil
	case "rotate-key":
		f := newFlags(env, "admin oidc rotate-key")
		var req oidc.KeyRequest
		f.StringVar(&req.Alg, "alg", oidc.AlgRS256, "signing algorithm of the new key: RS256 or ES256")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		var resp oidc.KeyResponse
		if err := c.do(ctx, "POST", "/api/v1/admin/oidc/keys", req, &resp); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "new signing key %s (%s); the previous key stays in the JWKS until the tokens it signed expire\n", resp.ID, resp.Alg)
		return nil
	}
	return usagef("admin oidc: unknown command %q", sub)
}

func kindOf(c model.OIDCClient) string {
	if c.Public {
		return "public, PKCE"
	}
	return "confidential"
}
