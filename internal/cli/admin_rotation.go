package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/rollover"
)

// adminOrgRotationCmd is camotp admin org rotation: the scheduled seed
// rollover policy, and how far the fleet is through it.
func adminOrgRotationCmd(env Env, t *adminTarget) *cobra.Command {
	var every, window, tz, perHour string
	c := &cobra.Command{
		Use:   "rotation [--every 90d [--window 02:00-05:00] [--tz Area/City] [--max-per-hour N%] | off]",
		Short: "rotate camera seeds on a schedule (or off); without flags, show the policy and the cameras due and overdue",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && args[0] != "off") {
				return usagef("admin org rotation: want off, or --every with its options")
			}
			return nil
		},
	}
	c.Flags().StringVar(&every, "every", "", "rotate a camera's seed once it is this old: days and hours (90d, 36h, 1d12h)")
	c.Flags().StringVar(&window, "window", "", "start rotations only in this daily window, HH:MM-HH:MM (default: any time)")
	c.Flags().StringVar(&tz, "tz", "", "IANA time zone of the window (default UTC)")
	c.Flags().StringVar(&perHour, "max-per-hour", "", fmt.Sprintf("at most this share of the fleet starts a rotation in one hour, N%% (default %d%%)", rollover.DefaultMaxPerHour))
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		set := len(args) == 1 || every != "" || window != "" || tz != "" || perHour != ""
		if !set {
			return showRotation(ctx, ac, env.Stdout)
		}
		var p rollover.Policy
		if len(args) == 0 {
			if every == "" {
				return usagef("admin org rotation: --every is required (or off)")
			}
			p = rollover.Policy{Every: every, Window: window, TZ: tz}
			if perHour != "" {
				n, err := strconv.Atoi(strings.TrimSuffix(perHour, "%"))
				if err != nil {
					return usagef("admin org rotation: --max-per-hour %q: want a share of the fleet such as 10%%", perHour)
				}
				p.MaxPerHour = n
			}
			if err := p.Validate(); err != nil {
				return usageError{fmt.Errorf("admin org rotation: %w", err)}
			}
		} else if every != "" || window != "" || tz != "" || perHour != "" {
			return usagef("admin org rotation off: takes no flags")
		}
		var st rollover.Status
		if err := ac.do(ctx, "PUT", rollover.PolicyPath, p, &st); err != nil {
			return err
		}
		printRotation(env.Stdout, st)
		return nil
	}
	return c
}

// showRotation prints the rollover policy and the fleet's counts.
func showRotation(ctx context.Context, ac adminClient, w io.Writer) error {
	var st rollover.Status
	if err := ac.do(ctx, "GET", rollover.PolicyPath, nil, &st); err != nil {
		return err
	}
	printRotation(w, st)
	return nil
}

// printRotation writes the policy line and, when it is on, the status
// line: cameras due, overdue and rotating, and the window.
func printRotation(w io.Writer, st rollover.Status) {
	fmt.Fprintf(w, "seed rotation: %s\n", st.Policy)
	if st.Policy.Off() {
		return
	}
	when := "in the window now"
	if !st.InWindow {
		when = "next window " + st.WindowStart.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "rotation status: %d cameras, %d due, %d overdue, %d rotating; %d started this hour; %s\n",
		st.Fleet, st.Due, st.Overdue, st.Rotating, st.Started, when)
}
