package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/radius"
)

// adminRadiusCmd is camotp admin radius: the RADIUS clients (NASes);
// add-client prints the generated shared secret once.
func adminRadiusCmd(env Env, t *adminTarget) *cobra.Command {
	return group("radius", "RADIUS clients (VPN concentrators, NASes): add-client, list, remove",
		adminRadiusAddCmd(env, t),
		adminRadiusListCmd(env, t),
		adminRadiusRemoveCmd(env, t),
	)
}

func adminRadiusAddCmd(env Env, t *adminTarget) *cobra.Command {
	var req radius.AddClientRequest
	var asJSON bool
	c := &cobra.Command{
		Use:   "add-client --name N --cidr CIDR [--json]",
		Short: "add a RADIUS client and print its generated shared secret (shown once)",
		Args:  noArgs,
	}
	c.Flags().StringVar(&req.Name, "name", "", "the client's name (letters, digits, ._-)")
	c.Flags().StringVar(&req.CIDR, "cidr", "", "source addresses the client sends from: CIDR or one address")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if req.Name == "" || req.CIDR == "" {
			return usagef("admin radius add-client: --name and --cidr are required")
		}
		if _, err := radius.ParseCIDR(req.CIDR); err != nil {
			return usagef("admin radius add-client: --cidr: %v", err)
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var info radius.ClientInfo
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/radius/clients", req, &info); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, info)
		}
		fmt.Fprintf(env.Stdout, "radius client %s (%s) added\nshared secret: %s\n", info.Name, info.CIDR, info.Secret)
		fmt.Fprintln(env.Stderr, "The secret is shown only this once: enter it in the NAS now (remove and add the client to get a new one).")
		return nil
	}
	return c
}

func adminRadiusListCmd(env Env, t *adminTarget) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "list the RADIUS clients",
		Args:  noArgs,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var list []radius.ClientInfo
		if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/radius/clients", nil, &list); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCIDR\tADDED")
		for _, ci := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", ci.Name, ci.CIDR, ci.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return c
}

func adminRadiusRemoveCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "remove N",
		Short: "remove a RADIUS client: its requests are no longer answered",
		Args:  oneArg("exactly one client name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			if err := ac.do(cmd.Context(), "DELETE", "/api/v1/admin/radius/clients/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "radius client %s removed\n", args[0])
			return nil
		},
	}
}
