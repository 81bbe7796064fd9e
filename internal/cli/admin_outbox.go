package cli

import (
	"errors"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
)

// adminOutboxCmd is camotp admin outbox: the development outbox.
func adminOutboxCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "outbox",
		Short: "print the code messages of the development outbox (serve --dev-outbox, camotp demo)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			var msgs []model.OutboxMessage
			if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/outbox", nil, &msgs); err != nil {
				var ae apiError
				if errors.As(err, &ae) && ae.status == http.StatusNotFound {
					return errors.New("the server keeps no outbox (it sends for real; the outbox is for serve --dev-outbox and camotp demo)")
				}
				return err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tCHANNEL\tTO\tMESSAGE")
			for _, m := range msgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.At.Format(time.RFC3339), m.Channel, m.Address, m.Body)
			}
			return tw.Flush()
		},
	}
}
