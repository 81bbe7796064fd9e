package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// listDrifting prints the cameras whose clock is flagged: drifting past
// the server's alert threshold, or disagreeing with their codes.
func listDrifting(ctx context.Context, env Env, ac adminClient, asJSON bool) error {
	var clocks []model.CameraClock
	if err := ac.do(ctx, "GET", "/api/v1/admin/clocks?flagged=1", nil, &clocks); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(env.Stdout, clocks)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tOFFSET\tRTT\tREPORTED\tFLAGS")
	for _, k := range clocks {
		flags := ""
		if k.DriftingSince != nil {
			flags = "drifting since " + k.DriftingSince.Format(time.RFC3339)
		}
		if k.MismatchSince != nil {
			if flags != "" {
				flags += ", "
			}
			flags += "clock-mismatch since " + k.MismatchSince.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%+.1fs\t%s\t%s\t%s\n", k.Serial, k.Offset.Seconds(), k.RTT, k.At.Format(time.RFC3339), flags)
	}
	return tw.Flush()
}
