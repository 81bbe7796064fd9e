// Package dburl opens the store that a --db value names:
//
//	""                  the SQLite file camotp.db in the data directory
//	sqlite:PATH         a SQLite file (relative paths from the working directory)
//	postgres://… or postgresql://…
//	                    a PostgreSQL database (several nodes may share it)
//
// A PostgreSQL URL should carry no password: libpq's PGPASSWORD or a
// PGPASSFILE (or passfile=) keeps it out of the process list and the logs.
package dburl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/sqlite"
)

// DefaultFile is the SQLite file in the data directory when --db is empty.
const DefaultFile = "camotp.db"

// Backend names a storage implementation.
type Backend string

// Backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Target is a parsed --db value.
type Target struct {
	Backend Backend
	// Path is the SQLite file.
	Path string
	// URL is the PostgreSQL connection URL.
	URL string
}

// String shows the target without any password.
func (t Target) String() string {
	if t.Backend == SQLite {
		return "sqlite:" + t.Path
	}
	return Redact(t.URL)
}

// Parse reads a --db value; dataDir is where the default SQLite file is.
func Parse(raw, dataDir string) (Target, error) {
	switch {
	case raw == "":
		return Target{Backend: SQLite, Path: filepath.Join(dataDir, DefaultFile)}, nil
	case strings.HasPrefix(raw, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if p == "" {
			return Target{}, errors.New("--db sqlite: needs a file path, e.g. sqlite:/var/lib/camotp/camotp.db")
		}
		return Target{Backend: SQLite, Path: p}, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" && u.Query().Get("host") == "" {
			return Target{}, fmt.Errorf("--db %s: not a PostgreSQL URL (postgres://USER@HOST:PORT/DB)", Redact(raw))
		}
		return Target{Backend: Postgres, URL: raw}, nil
	default:
		return Target{}, fmt.Errorf("--db %q: want sqlite:PATH or postgres://USER@HOST:PORT/DB", Redact(raw))
	}
}

// shownParams are connection parameters Redact shows.
var shownParams = map[string]bool{
	"sslmode": true, "sslrootcert": true, "host": true, "port": true, "dbname": true, "user": true,
	"application_name": true, "connect_timeout": true, "target_session_attrs": true,
	"pool_max_conns": true, "pool_min_conns": true, "search_path": true,
}

// Redact hides the password of a URL, in its user part or its query.
// Text it cannot read as a URL is shown only when it holds neither "@"
// nor "password".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") || strings.Contains(strings.ToLower(raw), "password") {
			return "(unreadable database URL)"
		}
		return raw
	}
	if rest, ok := strings.CutPrefix(raw, u.Scheme+"://"); ok && strings.Contains(rest[strings.IndexAny(rest+"/", "/?#"):], "@") {
		// An "@" after a "/", "?" or "#" of a password: the URL was cut
		// short and its host part may be the start of the password.
		return "(unreadable database URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		// Only parameters known to hold no secret are shown: an
		// unescaped "&" in a password would make its tail a "key".
		q, _ := url.ParseQuery(u.RawQuery)
		shown := url.Values{}
		hidden := false
		for k, v := range q {
			if shownParams[strings.ToLower(k)] {
				shown[k] = v
			} else {
				hidden = true
			}
		}
		parts := []string{}
		if len(shown) > 0 {
			parts = append(parts, shown.Encode())
		}
		if hidden {
			parts = append(parts, "…")
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || u.Opaque != "" || strings.Contains(u.Path, "@") {
		// A "#", "/" or "?" in a password cuts the URL at the wrong
		// place: what follows may be the rest of the password.
		return "(unreadable database URL)"
	}
	return u.String()
}

// Open opens (creating and migrating) the store t names.
func Open(ctx context.Context, t Target, key *masterkey.Key, now func() time.Time) (storage.Store, error) {
	switch t.Backend {
	case SQLite:
		return sqlite.Open(ctx, t.Path, key, now)
	case Postgres:
		return nil, errors.New("postgres backend: not in this build")
	}
	return nil, fmt.Errorf("unknown storage backend %q", t.Backend)
}
