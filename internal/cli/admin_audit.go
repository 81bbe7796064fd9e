package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
)

// adminAuditCmd is camotp admin audit: the audit log.
func adminAuditCmd(env Env, t *adminTarget) *cobra.Command {
	return group("audit", "the audit log: list it, check its hash chains, export it",
		adminAuditListCmd(env, t),
		adminAuditVerifyCmd(env, t),
		adminAuditExportCmd(env, t),
	)
}

// adminAuditListCmd is camotp admin audit list: the newest rows.
func adminAuditListCmd(env Env, t *adminTarget) *cobra.Command {
	var subject string
	c := &cobra.Command{
		Use:   "list [--subject S]",
		Short: "print the newest 500 rows: who did what to which camera or user, from where",
		Args:  noArgs,
	}
	c.Flags().StringVar(&subject, "subject", "", "only entries about this serial or user")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var entries []model.AuditEntry
		if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/audit?subject="+url.QueryEscape(subject), nil, &entries); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tSUBJECT\tRESULT\tSOURCE\tDETAIL")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail)
		}
		return tw.Flush()
	}
	return c
}
