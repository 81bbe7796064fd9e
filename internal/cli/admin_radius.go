package cli

import (
	"context"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/camotp/camotp/radius"
)

// adminRadius manages the RADIUS clients (NASes): add-client prints the
// generated shared secret once.
func adminRadius(ctx context.Context, env Env, c adminClient, args []string) error {
	if len(args) == 0 {
		return usagef("admin radius: want add-client, list or remove")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add-client":
		f := newFlags(env, "admin radius add-client")
		var req radius.AddClientRequest
		f.StringVar(&req.Name, "name", "", "the client's name (letters, digits, ._-)")
		f.StringVar(&req.CIDR, "cidr", "", "source addresses the client sends from: CIDR or one address")
		asJSON := f.Bool("json", false, "print JSON")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		if req.Name == "" || req.CIDR == "" {
			return usagef("admin radius add-client: --name and --cidr are required")
		}
		if _, err := radius.ParseCIDR(req.CIDR); err != nil {
			return usagef("admin radius add-client: --cidr: %v", err)
		}
		var info radius.ClientInfo
		if err := c.do(ctx, "POST", "/api/v1/admin/radius/clients", req, &info); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, info)
		}
		fmt.Fprintf(env.Stdout, "radius client %s (%s) added\nshared secret: %s\n", info.Name, info.CIDR, info.Secret)
		fmt.Fprintln(env.Stderr, "The secret is shown only this once: enter it in the NAS now (remove and add the client to get a new one).")
		return nil
	case "list":
		f := newFlags(env, "admin radius list")
		asJSON := f.Bool("json", false, "print JSON")
		if err := parse(f, args, 0); err != nil {
			return err
		}
		var list []radius.ClientInfo
		if err := c.do(ctx, "GET", "/api/v1/admin/radius/clients", nil, &list); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(env.Stdout, list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCIDR\tADDED")
		for _, ci := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ci.Name, ci.CIDR, ci.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "remove":
		name, rest := positional(args)
		if name == "" || len(rest) > 0 {
			return usagef("admin radius remove: want exactly one client name")
		}
		if err := c.do(ctx, "DELETE", "/api/v1/admin/radius/clients/"+url.PathEscape(name), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "radius client %s removed\n", name)
		return nil
	}
	return usagef("admin radius: unknown command %q (want add-client, list or remove)", sub)
}
