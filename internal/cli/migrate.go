package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage/dburl"
	"github.com/camotp/camotp/internal/storage/postgres"
	"github.com/camotp/camotp/internal/storage/sqlite"
)

// migrateCmd is camotp migrate: an installation from its SQLite file to
// PostgreSQL.
func migrateCmd(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate --to postgres://… [--data DIR]",
		Short: "move an installation's SQLite database into an empty PostgreSQL one (all or nothing)",
		Args:  noArgs,
	}
	fs := c.Flags()
	data := fs.String("data", ".camotp", "data directory of the installation (its master.key seals the secrets in both databases)")
	from := fs.String("from", "", "the SQLite database: sqlite:PATH (default: camotp.db in --data)")
	to := fs.String("to", "", "the PostgreSQL database: postgres://USER@HOST:PORT/DB (password from PGPASSWORD or PGPASSFILE; CAMOTP_DB also sets it)")
	c.RunE = func(cmd *cobra.Command, _ []string) error { return runMigrate(cmd.Context(), env, *data, *from, *to) }
	return c
}

// runMigrate moves the installation in data from the SQLite database from
// to the PostgreSQL database to.
func runMigrate(ctx context.Context, env Env, data, from, to string) error {
	if to == "" {
		to = env.Getenv("CAMOTP_DB")
	}
	src, err := dburl.Parse(from, data)
	if err != nil {
		return usagef("migrate --from: %v", err)
	}
	dst, err := dburl.Parse(to, data)
	if err != nil {
		return usagef("migrate --to: %v", err)
	}
	if src.Backend != dburl.SQLite || dst.Backend != dburl.Postgres {
		return usagef("migrate: want --from sqlite:PATH (or nothing) and --to postgres://…")
	}
	if _, err := os.Stat(src.Path); err != nil {
		return fmt.Errorf("migrate: the SQLite database: %w", err)
	}
	keyEnv := env.Getenv(masterkey.EnvVar)
	keyPath := filepath.Join(data, server.MasterKeyFile)
	if keyEnv == "" {
		// The key must be the installation's: a new one would seal nothing
		// the copied rows were sealed with.
		if _, err := os.Stat(keyPath); err != nil {
			return fmt.Errorf("migrate: the master key sealing the database: %w (give --data or %s)", err, masterkey.EnvVar)
		}
	}
	key, err := masterkey.Load(keyPath, keyEnv)
	if err != nil {
		return err
	}
	// Opening the SQLite file brings its schema to this version's, as the
	// next serve would.
	lite, err := sqlite.Open(ctx, src.Path, key, nil)
	if err != nil {
		return fmt.Errorf("migrate: open %s: %w", src, err)
	}
	sealed, err := openSealed(ctx, lite)
	lite.Close()
	if err != nil {
		return fmt.Errorf("migrate: nothing copied: %w (is this the installation's master key?)", err)
	}
	fmt.Fprintf(env.Stderr, "migrate: the master key opens every sealed secret (%d)\n", sealed)
	raw, err := sql.Open("sqlite", "file:"+src.Path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("migrate: open %s: %w", src, err)
	}
	defer raw.Close()
	pg, err := postgres.Open(ctx, dst.URL, key, nil)
	if err != nil {
		return fmt.Errorf("migrate: open %s: %w", dst, err)
	}
	defer pg.Close()
	fmt.Fprintf(env.Stderr, "migrate: copying %s to %s (one transaction) …\n", src, dst)
	report, err := pg.ImportSQLite(ctx, raw)
	if err != nil {
		return fmt.Errorf("migrate: nothing copied: %w", err)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "table\tin SQLite\tcopied now\tin PostgreSQL\t")
	for _, c := range report {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t\n", c.Table, c.Source, c.Copied, c.Here)
	}
	w.Flush()
	// The sealed seeds must open with this key on the new database.
	cams, err := pg.Cameras(ctx)
	if err != nil {
		return fmt.Errorf("migrate: check the copy: %w", err)
	}
	opened, bad := 0, 0
	for _, c := range cams {
		if c.State != model.StateProvisioned {
			continue
		}
		if _, err := pg.ActiveSeed(ctx, c.Serial); err != nil {
			bad++
			if bad == 1 {
				fmt.Fprintf(env.Stderr, "migrate: camera %s: its seed does not open on PostgreSQL: %v\n", c.Serial, err)
			}
			continue
		}
		opened++
	}
	if bad > 0 {
		return errors.New("migrate: copied, but camera seeds do not open with this master key: is it the installation's?")
	}
	fmt.Fprintf(env.Stdout, "%d provisioned camera seeds open on PostgreSQL with this master key. Start every node with --db %s and a copy of %s.\n",
		opened, dst, server.MasterKeyFile)
	return nil
}

// openSealed opens every secret sealed in st with its master key — camera
// seeds (active and pending), app seeds, RADIUS secrets, OIDC signing keys
// — and returns how many there are: a copy made with another key would
// be unreadable on the new database.
func openSealed(ctx context.Context, st *sqlite.Store) (int, error) {
	n := 0
	cams, err := st.Cameras(ctx)
	if err != nil {
		return 0, err
	}
	for _, c := range cams {
		if c.State == model.StateProvisioned {
			if _, err := st.ActiveSeed(ctx, c.Serial); err != nil {
				return n, fmt.Errorf("camera %s's seed: %w", c.Serial, err)
			}
			n++
		}
		if c.PendingOp != "" {
			if _, err := st.Pending(ctx, c.Serial); err != nil {
				return n, fmt.Errorf("camera %s's pending operation: %w", c.Serial, err)
			}
			n++
		}
	}
	users, err := st.Users(ctx)
	if err != nil {
		return n, err
	}
	for _, u := range users {
		methods, err := st.Methods(ctx, u.Username)
		if err != nil {
			return n, err
		}
		if slices.Contains(methods, model.MethodApp) {
			if _, err := st.AppSeed(ctx, u.Username); err != nil {
				return n, fmt.Errorf("%s's authenticator app seed: %w", u.Username, err)
			}
			n++
		}
	}
	rcs, err := st.RadiusClients(ctx)
	if err != nil {
		return n, fmt.Errorf("RADIUS client secrets: %w", err)
	}
	keys, err := st.OIDCKeys(ctx, time.Time{})
	if err != nil {
		return n, fmt.Errorf("OpenID Connect signing keys: %w", err)
	}
	return n + len(rcs) + len(keys), nil
}
