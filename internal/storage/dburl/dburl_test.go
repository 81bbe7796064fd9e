package dburl

import (
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		backend Backend
		shown   string
		err     string
	}{
		{"", SQLite, "sqlite:/data/camotp.db", ""},
		{"sqlite:/var/lib/camotp/c.db", SQLite, "sqlite:/var/lib/camotp/c.db", ""},
		{"sqlite:rel.db", SQLite, "sqlite:rel.db", ""},
		{"sqlite:", "", "", "needs a file path"},
		{"postgres://camotp@db.pd.example:5432/camotp", Postgres, "postgres://camotp@db.pd.example:5432/camotp", ""},
		{"postgresql://camotp:hunter2@db/camotp?sslmode=verify-full", Postgres, "postgresql://camotp:xxxxx@db/camotp?sslmode=verify-full", ""},
		{"postgres://db/camotp?password=hunter2&sslmode=require", Postgres, "postgres://db/camotp?sslmode=require&…", ""},
		{"postgres:///camotp?host=/run/postgresql", Postgres, "postgres:///camotp?host=%2Frun%2Fpostgresql", ""},
		{"postgres://", "", "", "not a PostgreSQL URL"},
		{"mysql://u:hunter2@db/x", "", "", "want sqlite:PATH or postgres://"},
		{"/var/lib/camotp.db", "", "", "want sqlite:PATH"},
	} {
		got, err := Parse(tc.raw, "/data")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error %q", tc.raw, got, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Parse(%q): the error shows the password: %v", tc.raw, err)
			}
			continue
		}
		if err != nil || got.Backend != tc.backend || got.String() != tc.shown {
			t.Errorf("Parse(%q) = %+v (%q), %v; want %s %q", tc.raw, got, got.String(), err, tc.backend, tc.shown)
		}
	}
}

// FuzzRedact: whatever the URL, the password given in it never shows.
func FuzzRedact(f *testing.F) {
	f.Add("camotp", "hunter2", false)
	f.Add("", "hunter2", true)
	f.Add("a@b", "p:w/d?x", false)
	f.Fuzz(func(t *testing.T, user, pass string, inQuery bool) {
		if len(pass) < 4 || strings.ContainsAny(pass, "xX5") || strings.Contains(url.UserPassword(user, "").String()+user, pass) || strings.Contains("postgres://@db.example/camotp?sslmode=disable&password=…", pass) {
			return // too short to tell apart, or found in the rest of the URL
		}
		raw := "postgres://" + user + ":" + pass + "@db.example/camotp"
		if inQuery {
			raw = "postgres://" + user + "@db.example/camotp?sslmode=disable&password=" + pass
		}
		if got := Redact(raw); strings.Contains(got, pass) || strings.Contains(got, url.QueryEscape(pass)) || strings.Contains(got, url.PathEscape(pass)) {
			t.Fatalf("Redact(%q) = %q shows the password", raw, got)
		}
	})
}
