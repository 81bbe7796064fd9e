package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/oidc"
)

// adminOIDCCmd is camotp admin oidc: the OpenID Connect clients and the
// signing key.
func adminOIDCCmd(env Env, t *adminTarget) *cobra.Command {
	return group("oidc", "OpenID Connect clients and signing key: add-client, list, remove, rotate-key",
		adminOIDCAddCmd(env, t),
		adminOIDCListCmd(env, t),
		adminOIDCRemoveCmd(env, t),
		adminOIDCRotateCmd(env, t),
	)
}

func adminOIDCAddCmd(env Env, t *adminTarget) *cobra.Command {
	var req oidc.ClientRequest
	var uris []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "add-client --id ID --redirect-uri URI [--redirect-uri URI...] [--public] [--json]",
		Short: "register a relying party; a confidential one's secret is printed once",
		Args:  noArgs,
	}
	c.Flags().StringVar(&req.ID, "id", "", "client ID (the application's client_id)")
	c.Flags().StringArrayVar(&uris, "redirect-uri", nil, "redirect URI, matched exactly (repeat for more; https, or http on loopback)")
	c.Flags().BoolVar(&req.Public, "public", false, "a public client (no secret; PKCE S256 required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if req.ID == "" || len(uris) == 0 {
			return usagef("admin oidc add-client: want --id ID --redirect-uri URI")
		}
		req.RedirectURIs = uris
		for _, u := range uris {
			if err := oidc.CheckRedirectURI(u); err != nil {
				return usageError{err}
			}
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var resp oidc.ClientResponse
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/oidc/clients", req, &resp); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, resp)
		}
		fmt.Fprintf(env.Stdout, "client %s registered (%s)\n", resp.ID, kindOf(resp.OIDCClient))
		if resp.Secret != "" {
			fmt.Fprintf(env.Stdout, "client secret (shown once, only its hash is kept): %s\n", resp.Secret)
		}
		return nil
	}
	return c
}

func adminOIDCListCmd(env Env, t *adminTarget) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "list the OpenID Connect clients",
		Args:  noArgs,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var list []model.OIDCClient
		if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/oidc/clients", nil, &list); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT\tKIND\tREDIRECT URIS")
		for _, cl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cl.ID, kindOf(cl), strings.Join(cl.RedirectURIs, " "))
		}
		return tw.Flush()
	}
	return c
}

func adminOIDCRemoveCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "remove a client: its codes and access tokens stop working",
		Args:  oneArg("exactly one client ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			if err := ac.do(cmd.Context(), "DELETE", "/api/v1/admin/oidc/clients/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "client %s removed; its codes and access tokens no longer work\n", args[0])
			return nil
		},
	}
}

func adminOIDCRotateCmd(env Env, t *adminTarget) *cobra.Command {
	var req oidc.KeyRequest
	c := &cobra.Command{
		Use:   "rotate-key [--alg RS256|ES256]",
		Short: "sign with a new key; the previous one stays in the JWKS until its tokens expire",
		Args:  noArgs,
	}
	c.Flags().StringVar(&req.Alg, "alg", oidc.AlgRS256, "signing algorithm of the new key: RS256 or ES256")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var resp oidc.KeyResponse
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/oidc/keys", req, &resp); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "new signing key %s (%s); the previous key stays in the JWKS until the tokens it signed expire\n", resp.ID, resp.Alg)
		return nil
	}
	return c
}

func kindOf(c model.OIDCClient) string {
	if c.Public {
		return "public, PKCE"
	}
	return "confidential"
}
