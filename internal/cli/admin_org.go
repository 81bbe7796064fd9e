package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/signin"
)

// adminOrgCmd is camotp admin org: the organisation's MFA policy.
func adminOrgCmd(env Env, t *adminTarget) *cobra.Command {
	return group("org", "the organisation's MFA policy: show, methods, require-mfa, rotation",
		adminOrgShowCmd(env, t),
		adminOrgMethodsCmd(env, t),
		adminOrgRequireCmd(env, t),
		adminOrgRotationCmd(env, t),
	)
}

// changePolicy reads the policy, lets change alter it (nil: show it as it
// is) and prints the policy the server then holds.
func changePolicy(ctx context.Context, env Env, t *adminTarget, change func(*signin.Policy) error) error {
	ac, err := t.client(env)
	if err != nil {
		return err
	}
	var pol signin.Policy
	if err := ac.do(ctx, "GET", "/api/v1/admin/org/policy", nil, &pol); err != nil {
		return err
	}
	if change != nil {
		if err := change(&pol); err != nil {
			return err
		}
		if err := ac.do(ctx, "PUT", "/api/v1/admin/org/policy", pol, &pol); err != nil {
			return err
		}
	}
	req := "off"
	if pol.RequireMFA {
		req = "on"
	}
	fmt.Fprintf(env.Stdout, "methods: %s\nrequire MFA: %s\n", strings.Join(pol.Methods, ","), req)
	return nil
}

func adminOrgShowCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "print the enabled MFA methods, whether MFA is required and the seed rotation policy",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := changePolicy(cmd.Context(), env, t, nil); err != nil {
				return err
			}
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			return showRotation(cmd.Context(), ac, env.Stdout)
		},
	}
}

func adminOrgMethodsCmd(env Env, t *adminTarget) *cobra.Command {
	var enable string
	c := &cobra.Command{
		Use:   "methods --enable M[,M...]",
		Short: "enable these MFA methods (" + strings.Join(signin.OrgMethods, ", ") + ") and disable the others",
		Args:  noArgs,
	}
	c.Flags().StringVar(&enable, "enable", "", "comma-separated methods to enable ("+strings.Join(signin.OrgMethods, ", ")+"); the others are disabled")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if enable == "" {
			return usagef("admin org methods: want --enable M[,M...]")
		}
		return changePolicy(cmd.Context(), env, t, func(pol *signin.Policy) error {
			pol.Methods = strings.Split(enable, ",")
			if err := pol.Validate(); err != nil {
				return usageError{err}
			}
			return nil
		})
	}
	return c
}

func adminOrgRequireCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "require-mfa on|off",
		Short: "require a second factor of every user (on) or let users without one sign in (off)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
				return usagef("admin org require-mfa: want on or off")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return changePolicy(cmd.Context(), env, t, func(pol *signin.Policy) error {
				pol.RequireMFA = args[0] == "on"
				return nil
			})
		},
	}
}
