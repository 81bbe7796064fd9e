package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// importTables are the tables camotp migrate copies, parents before the
// rows that refer to them, with the SQLite ORDER BY that keeps what
// depends on insertion order (oidc_keys.seq stands in for SQLite's rowid).
// health and schema_version are each backend's own.
var importTables = []struct{ name, order string }{
	{"users", "username"},
	{"cameras", "serial"},
	{"audit", "id"},
	{"otp_state", "subject"},
	{"throttle", "key"},
	{"tokens", "hash"},
	{"org_settings", "key"},
	{"mfa_methods", "username, method"},
	{"enrolments", "username, method"},
	{"backup_codes", "username, hash"},
	{"sent_codes", "username, purpose"},
	{"outbox", "id"},
	{"radius_clients", "name"},
	{"oidc_clients", "id"},
	{"oidc_keys", "rowid"},
	{"oidc_auth_requests", "id"},
	{"oidc_tokens", "id"},
}

// ErrNotEmpty is the refusal to import into a database that holds data.
var ErrNotEmpty = errors.New("the PostgreSQL database is not empty")

// logTables keep text a client sent (a made-up username in a failed
// sign-in): text PostgreSQL cannot hold is kept with U+FFFD in place of
// the bad bytes, as this backend's audit log does.
var logTables = map[string]bool{"audit": true, "outbox": true}

// importBatch is how many rows go to the server in one round trip.
const importBatch = 500

// identityTables have ids copied from SQLite: their sequences move past
// the largest after the copy.
var identityTables = []string{"audit", "outbox"}

// TableCopy is what the import did to one table.
type TableCopy struct {
	Table string
	// Source is the number of rows in the SQLite table.
	Source int
	// Copied is the number of rows inserted here.
	Copied int
	// Here is the number of rows in the PostgreSQL table afterwards (the
	// import checks it is Source).
	Here int
}

// ImportSQLite copies every row of a SQLite camotp database at the same
// schema version into this one, in one transaction: sealed secrets as
// they are (every node needs the same master key), replay records,
// throttles, tokens and the audit log with its ids.
// It copies into an empty database only (ErrNotEmpty otherwise), reads
// the source in one read transaction, and fails, changing nothing, when a
// table holds fewer rows afterwards than the source.
func (s *Store) ImportSQLite(ctx context.Context, src *sql.DB) ([]TableCopy, error) {
	var srcVersion int
	if err := src.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&srcVersion); err != nil {
		return nil, fmt.Errorf("read the SQLite schema version: %w", err)
	}
	here, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if srcVersion != here {
		return nil, fmt.Errorf("the SQLite database is at schema version %d, this one at %d: open it with this camotp version first", srcVersion, here)
	}
	// Into an empty database only: rows here would be newer than the
	// source's (a second run after nodes started would bring back revoked
	// sessions and replaced codes) or clash with its ids.
	for _, t := range importTables {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+t.name).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s here: %w", t.name, classify(err))
		}
		if n > 0 {
			return nil, fmt.Errorf("%w: %s holds %d rows (camotp copies into an empty database only; if an earlier migrate filled it, that migration is done)", ErrNotEmpty, t.name, n)
		}
	}
	// One read transaction: every table as of one moment.
	snap, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read the SQLite database: %w", err)
	}
	defer snap.Rollback()
	if err := s.checkSourceChain(ctx, snap); err != nil {
		return nil, err
	}
	var report []TableCopy
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		report = report[:0]
		for _, t := range importTables {
			c, err := importTable(ctx, snap, tx, t.name, t.order)
			if err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
			report = append(report, c)
		}
		for _, t := range identityTables {
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM `+t+`), 1))`); err != nil {
				return fmt.Errorf("move the %s id sequence: %w", t, err)
			}
		}
		if err := s.relinkImported(ctx, tx); err != nil {
			return err
		}
		for _, c := range report {
			if c.Here != c.Source || c.Copied != c.Source {
				return fmt.Errorf("%s: %d rows in the source, %d copied, %d here after the copy", c.Table, c.Source, c.Copied, c.Here)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return report, nil
}

// importTable copies one table: the columns are this database's (a
// column SQLite lacks fails the copy), converted to their types here.
func importTable(ctx context.Context, src *sql.Tx, tx pgx.Tx, table, order string) (TableCopy, error) {
	c := TableCopy{Table: table}
	rows, err := tx.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'
			AND NOT (table_name = 'oidc_keys' AND column_name = 'seq')
		ORDER BY ordinal_position`, table)
	if err != nil {
		return c, err
	}
	var cols, types []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return c, err
		}
		cols, types = append(cols, name), append(types, typ)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, err
	}
	if len(cols) == 0 {
		return c, fmt.Errorf("no such table here")
	}
	list := strings.Join(cols, ", ")
	ph := make([]string, len(cols))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	insert := `INSERT INTO ` + table + ` (` + list + `) VALUES (` + strings.Join(ph, ", ") + `)`
	in, err := src.QueryContext(ctx, `SELECT `+list+` FROM `+table+` ORDER BY `+order)
	if err != nil {
		return c, fmt.Errorf("read the SQLite rows: %w", err)
	}
	defer in.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	// Rows go in batches: one round trip per importBatch rows.
	batch := &pgx.Batch{}
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		res := tx.SendBatch(ctx, batch)
		for range batch.Len() {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return err
			}
			c.Copied += int(tag.RowsAffected())
		}
		batch = &pgx.Batch{}
		return res.Close()
	}
	for in.Next() {
		if err := in.Scan(ptrs...); err != nil {
			return c, err
		}
		args := make([]any, len(cols))
		for i, v := range vals {
			if args[i], err = convert(v, types[i], logTables[table]); err != nil {
				return c, fmt.Errorf("row %d, column %s: %w", c.Source+1, cols[i], err)
			}
		}
		batch.Queue(insert, args...)
		c.Source++
		if batch.Len() == importBatch {
			if err := flush(); err != nil {
				return c, err
			}
		}
	}
	if err := in.Err(); err != nil {
		return c, err
	}
	if err := flush(); err != nil {
		return c, err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&c.Here); err != nil {
		return c, err
	}
	return c, nil
}

// convert turns a value as SQLite gave it into one for a column of type
// typ here: SQLite's 0/1 integers are booleans, text and bytes cross
// between TEXT and BYTEA (text that PostgreSQL cannot hold is refused).
func convert(v any, typ string, lossyText bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case int64:
			return x != 0, nil
		case bool:
			return x, nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case "text":
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			return nil, fmt.Errorf("%T where text was expected", v)
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			if !lossyText {
				return nil, fmt.Errorf("text PostgreSQL cannot hold (NUL or invalid UTF-8)")
			}
			// What a client sent, as the audit log here keeps it.
			s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
		}
		return s, nil
	case "bigint", "integer", "smallint":
		if x, ok := v.(int64); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%T for a %s column", v, typ)
}
