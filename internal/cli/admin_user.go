package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// roleNames are the roles admin user add --role takes, as the server
// names them.
const roleNames = "admin, fleet, security or officer"

// parseRole checks a --role value; "user", the name of officer before
// there were four roles, still means officer.
func parseRole(role string) (string, error) {
	switch role {
	case "admin", "fleet", "security", "officer":
		return role, nil
	case "user":
		return "officer", nil
	}
	return "", usagef("admin user add: --role %q: want %s", role, roleNames)
}

// adminUserCmd is camotp admin user: users, their passwords and MFA.
func adminUserCmd(env Env, t *adminTarget) *cobra.Command {
	return group("user", "users: add, list, password, forget-devices, reset-mfa",
		adminUserAddCmd(env, t),
		adminUserListCmd(env, t),
		adminUserPasswordCmd(env, t),
		adminUserForgetDevicesCmd(env, t),
		adminUserResetMFACmd(env, t),
	)
}

// readPassword reads a password given on standard input (one line, at
// most 4 KiB).
func readPassword(env Env) (string, error) {
	pw, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(string(pw), "\r\n"), nil
}

func adminUserAddCmd(env Env, t *adminTarget) *cobra.Command {
	var req provisioning.UserRequest
	var fromStdin bool
	c := &cobra.Command{
		Use:   "add U --email E [--phone P] [--role admin|fleet|security|officer] --password-stdin",
		Short: "add a user, with the password read from standard input",
		Args:  oneArg("U --email E --password-stdin"),
	}
	c.Flags().StringVar(&req.Email, "email", "", "email address")
	c.Flags().StringVar(&req.Phone, "phone", "", "phone number")
	c.Flags().StringVar(&req.Role, "role", "", "role: "+roleNames+" (default officer; user means officer too)")
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if req.Email == "" || !fromStdin {
			return usagef("admin user add: want U --email E --password-stdin")
		}
		if req.Role != "" {
			role, err := parseRole(req.Role)
			if err != nil {
				return err
			}
			req.Role = role
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		req.Username, req.Password = args[0], pw
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/users", req, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "user %s added\n", req.Username)
		return nil
	}
	return c
}

func adminUserPasswordCmd(env Env, t *adminTarget) *cobra.Command {
	var fromStdin bool
	c := &cobra.Command{
		Use:   "password U --password-stdin",
		Short: "set a user's password (read from standard input); ends their sessions and trusted browsers",
		Args:  oneArg("U --password-stdin"),
	}
	c.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the new password from standard input")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if !fromStdin {
			return usagef("admin user password: want U --password-stdin")
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/users/"+url.PathEscape(name)+"/password", provisioning.PasswordRequest{Password: pw}, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "password of %s changed; their sessions and trusted browsers are ended\n", name)
		return nil
	}
	return c
}

func adminUserForgetDevicesCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "forget-devices U",
		Short: "end a user's sessions, trusted browsers and registered MFA methods",
		Args:  oneArg("exactly one username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/users/"+url.PathEscape(args[0])+"/forget-devices", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "sessions, trusted browsers and registered MFA methods of %s ended\n", args[0])
			return nil
		},
	}
}

func adminUserResetMFACmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-mfa U",
		Short: "remove a user's authenticator app, backup codes and trusted browsers",
		Args:  oneArg("exactly one username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/users/"+url.PathEscape(args[0])+"/reset-mfa", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "MFA of %s reset: authenticator app, backup codes and trusted browsers removed\n", args[0])
			return nil
		},
	}
}

func adminUserListCmd(env Env, t *adminTarget) *cobra.Command {
	var asJSON, without bool
	c := &cobra.Command{
		Use:   "list [--json] [--without-mfa]",
		Short: "list the users: email, role, camera (or those with no way to pass MFA)",
		Args:  noArgs,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&without, "without-mfa", false, "only users with no method to pass MFA with")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if without {
			var list []signin.UserMFA
			if err := ac.do(ctx, "GET", "/api/v1/admin/mfa/users?without=1", nil, &list); err != nil {
				return err
			}
			if asJSON {
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
		if err := ac.do(ctx, "GET", "/api/v1/admin/users", nil, &users); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, users)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tEMAIL\tROLE\tCAMERA")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Email, u.Role, orDash(u.Camera))
		}
		return tw.Flush()
	}
	return c
}
