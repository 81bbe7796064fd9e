package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
)

// adminCameraReportLostCmd is camotp admin camera report-lost.
func adminCameraReportLostCmd(env Env, t *adminTarget) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "report-lost SN [--reason TEXT]",
		Short: "report a camera lost or stolen: its codes are refused at once, its officer unassigned, a wipe queued",
		Long: `Report a camera lost or stolen. At once, in one step: every code of the
camera is refused (its current and any pending seed), a wipe is queued for
when it next connects, its officer is unassigned (they sign in with their
other methods), and the report is logged, counted and audited. The camera
stays lost until 'found', which is refused until it was provisioned again.
Reporting it twice changes nothing.`,
		Args: oneArg("a serial"),
	}
	c.Flags().StringVar(&reason, "reason", "", fmt.Sprintf("why (one line, at most %d bytes; audited)", model.MaxLostReason))
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var resp provisioning.LostResponse
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(args[0])+"/report-lost",
			provisioning.LostRequest{Reason: reason}, &resp); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, resp.Message)
		return nil
	}
	return c
}

// adminCameraFoundCmd is camotp admin camera found.
func adminCameraFoundCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "found SN",
		Short: "end a camera's lost report, once it was provisioned again with a new seed",
		Long: `End the lost report of a camera that is back in the agency's hands. It is
refused until the camera has been provisioned again after the report
(camotp admin camera provision SN: the wipe must be proven first), so
that the seed a thief may have copied is dead. Found does not provision
the camera itself.`,
		Args: oneArg("a serial"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			var cam model.Camera
			if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(args[0])+"/found", nil, &cam); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "camera %s found: no longer reported lost (seed version %d); it can be assigned again\n", cam.Serial, cam.Version)
			return nil
		},
	}
}

// onlyLost keeps the cameras reported lost.
func onlyLost(cams []model.Camera) []model.Camera {
	out := []model.Camera{}
	for _, c := range cams {
		if c.Lost != nil {
			out = append(out, c)
		}
	}
	return out
}
