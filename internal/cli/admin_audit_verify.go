package cli

import (
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
)

// adminAuditVerifyCmd is camotp admin audit verify: check the hash chains.
func adminAuditVerifyCmd(env Env, t *adminTarget) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify [--json]",
		Short: "check the audit log's hash chains: exit 0 when every row holds, 4 naming the first row edited, deleted, inserted or moved",
		Args:  noArgs,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var v model.AuditVerdict
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/audit/verify", nil, &v); err != nil {
			return err
		}
		if asJSON {
			if err := writeJSON(env.Stdout, v); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(env.Stdout, "checked %d rows in %d chains\n", v.Rows, v.Chains)
			for _, h := range v.Heads {
				fmt.Fprintf(env.Stdout, "chain %d: %d rows, head %s\n", h.Chain, h.Seq, hex.EncodeToString(h.MAC))
			}
		}
		if b := v.Broken; b != nil {
			return exitError{exitAuditBroken, fmt.Errorf("audit log broken: %s", b.Reason)}
		}
		if !asJSON {
			fmt.Fprintln(env.Stdout, "every chain holds")
		}
		return nil
	}
	return c
}
