package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
)

// adminCameraCmd is camotp admin camera: the camera registry and its
// provisioning operations.
func adminCameraCmd(env Env, t *adminTarget) *cobra.Command {
	return group("camera", "cameras: register, provision, rotate, wipe, assign, list, report lost and found, import/export seeds (PSKC)",
		adminCameraAddCmd(env, t),
		adminCameraOpCmd(env, t, "provision", "send the camera its first seed and wait for its proof"),
		adminCameraOpCmd(env, t, "rotate", "give the camera a new seed and wait for its proof"),
		adminCameraOpCmd(env, t, "wipe", "erase the camera's seed and wait for its proof"),
		adminCameraAssignCmd(env, t),
		adminCameraUnassignCmd(env, t),
		adminCameraListCmd(env, t),
		adminCameraShowCmd(env, t),
		adminCameraReportLostCmd(env, t),
		adminCameraFoundCmd(env, t),
		adminCameraImportCmd(env, t),
		adminCameraExportCmd(env, t),
		adminCameraSetKeyCmd(env, t),
	)
}

func adminCameraAddCmd(env Env, t *adminTarget) *cobra.Command {
	var req provisioning.CameraRequest
	c := &cobra.Command{
		Use:   "add --serial SN --model M --public-key K",
		Short: "register a camera by the public identity 'camotp camera init' printed",
		Args:  noArgs,
	}
	c.Flags().StringVar(&req.Serial, "serial", "", "serial number")
	c.Flags().StringVar(&req.Model, "model", "", "body4, body3 or workforce")
	c.Flags().StringVar(&req.PublicKey, "public-key", "", "the camera's publicKey from 'camotp camera init'")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if req.Serial == "" || req.Model == "" || req.PublicKey == "" {
			return usagef("admin camera add: --serial, --model and --public-key are required")
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var cam model.Camera
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras", req, &cam); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "camera %s (%s) registered\n", cam.Serial, cam.Model)
		return nil
	}
	return c
}

// adminCameraOpCmd is provision, rotate or wipe: an operation the camera
// proves, waited for up to --wait.
func adminCameraOpCmd(env Env, t *adminTarget, op, short string) *cobra.Command {
	var wait time.Duration
	c := &cobra.Command{
		Use:   op + " SN [--wait D]",
		Short: short,
		Args:  oneArg("a serial"),
	}
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "wait this long for the camera's proof (0: do not wait)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		serial := args[0]
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var resp provisioning.OpResponse
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(serial)+"/"+op, nil, &resp); err != nil {
			return err
		}
		if wait <= 0 {
			fmt.Fprintf(env.Stdout, "camera %s: %s version %d sent; not waiting for the proof\n", serial, op, resp.Version)
			return nil
		}
		return waitProof(cmd.Context(), env, ac, serial, resp, wait)
	}
	return c
}

func adminCameraAssignCmd(env Env, t *adminTarget) *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "assign SN --user U",
		Short: "give the camera to a user: its codes become their second factor",
		Args:  oneArg("SN --user U"),
	}
	c.Flags().StringVar(&user, "user", "", "username")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		serial := args[0]
		if user == "" {
			return usagef("admin camera assign: want SN --user U")
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(serial)+"/assign", provisioning.AssignRequest{User: user}, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "camera %s assigned to %s\n", serial, user)
		return nil
	}
	return c
}

func adminCameraUnassignCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "unassign SN",
		Short: "take the camera from its user",
		Args:  oneArg("exactly one serial"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			var cam model.Camera
			if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(args[0])+"/unassign", nil, &cam); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "camera %s unassigned\n", args[0])
			return nil
		},
	}
}

func adminCameraShowCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "show SN",
		Short: "print one camera as JSON",
		Args:  oneArg("exactly one serial"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			var cam model.Camera
			if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/cameras/"+url.PathEscape(args[0]), nil, &cam); err != nil {
				return err
			}
			return writeJSON(env.Stdout, cam)
		},
	}
}

func adminCameraListCmd(env Env, t *adminTarget) *cobra.Command {
	var asJSON, lost, drifting bool
	c := &cobra.Command{
		Use:   "list [--json] [--lost] [--drifting]",
		Short: "list the cameras: state, version, user, last seen (--drifting: the cameras whose clock is flagged)",
		Args:  noArgs,
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&lost, "lost", false, "only the cameras reported lost")
	c.Flags().BoolVar(&drifting, "drifting", false, "list only the cameras whose signed clock reports are past the server's --clock-drift-alert, or disagree with their codes, with their clock offsets")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		if drifting {
			return listDrifting(cmd.Context(), env, ac, asJSON)
		}
		var cams []model.Camera
		if err := ac.do(cmd.Context(), "GET", "/api/v1/admin/cameras", nil, &cams); err != nil {
			return err
		}
		if lost {
			cams = onlyLost(cams)
		}
		if asJSON {
			return writeJSON(env.Stdout, cams)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tMODEL\tSTATE\tVERSION\tUSER\tLAST SEEN")
		for _, cam := range cams {
			state := string(cam.State)
			if cam.PendingOp != "" && cam.State == model.StateProvisioned {
				state += " (" + string(cam.PendingOp) + " pending)"
			}
			if cam.Lost != nil {
				state += ", LOST"
			}
			seen := "never"
			if cam.LastSeen != nil {
				seen = cam.LastSeen.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", cam.Serial, cam.Model, state, cam.Version, orDash(cam.AssignedUser), seen)
		}
		return tw.Flush()
	}
	return c
}
