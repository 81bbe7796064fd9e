package cli

import (
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/provisioning"
)

// adminServerKeyCmd is camotp admin server-key: the key cameras pin.
func adminServerKeyCmd(env Env, t *adminTarget) *cobra.Command {
	return &cobra.Command{
		Use:   "server-key",
		Short: "print the provisioning server's key, which cameras pin (camotp camera init --server-key)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, err := t.client(env)
			if err != nil {
				return err
			}
			var k provisioning.ServerKeyResponse
			if err := ac.do(cmd.Context(), "GET", provisioning.ServerKeyPath, nil, &k); err != nil {
				return err
			}
			_, err = fmt.Fprintln(env.Stdout, base64.StdEncoding.EncodeToString(k.ServerKey))
			return err
		},
	}
}
