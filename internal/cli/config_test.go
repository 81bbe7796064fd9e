package cli

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// testFlags is a flag set like serve's: a string, a number, a boolean, a
// duration and a list.
func testFlags() (*pflag.FlagSet, map[string]func() string) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	http := fs.String("http", "127.0.0.1:8080", "")
	n := fs.Int("max-failures", 3, "")
	b := fs.Bool("secure-cookies", false, "")
	d := fs.Duration("session-ttl", time.Hour, "")
	l := fs.StringSlice("trusted-proxies", nil, "")
	fs.String("config", "", "")
	return fs, map[string]func() string{
		"http": func() string { return *http }, "max-failures": func() string { return fmt.Sprint(*n) },
		"secure-cookies": func() string { return fmt.Sprint(*b) }, "session-ttl": func() string { return d.String() },
		"trusted-proxies": func() string { return strings.Join(*l, ",") },
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "camotp.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A flag beats the environment, which beats the file, which beats the
// default; every kind of value comes through.
func TestConfigurePrecedence(t *testing.T) {
	path := writeConfig(t, `
http = "0.0.0.0:8443"
max-failures = 5
secure-cookies = true
session-ttl = "12h"
trusted-proxies = ["10.0.0.0/8", "192.168.0.0/16"]
`)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want map[string]string
	}{
		{"file only", nil, nil, map[string]string{"http": "0.0.0.0:8443", "max-failures": "5", "secure-cookies": "true",
			"session-ttl": "12h0m0s", "trusted-proxies": "10.0.0.0/8,192.168.0.0/16"}},
		{"environment over file", nil, map[string]string{"CAMOTP_MAX_FAILURES": "7", "CAMOTP_TRUSTED_PROXIES": "172.16.0.0/12"},
			map[string]string{"http": "0.0.0.0:8443", "max-failures": "7", "trusted-proxies": "172.16.0.0/12"}},
		{"flag over both", []string{"--max-failures", "9", "--http", "127.0.0.1:9000"}, map[string]string{"CAMOTP_MAX_FAILURES": "7"},
			map[string]string{"http": "127.0.0.1:9000", "max-failures": "9", "secure-cookies": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, get := testFlags()
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			env := Env{Getenv: func(k string) string { return tc.env[k] }}
			if err := configure(fs, env, path, "config"); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := get[k](); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
	// No file, no environment: the defaults.
	fs, get := testFlags()
	if err := configure(fs, Env{Getenv: func(string) string { return "" }}, "", "config"); err != nil || get["http"]() != "127.0.0.1:8080" {
		t.Fatalf("defaults: %v %s", err, get["http"]())
	}
}

// Unknown keys, nested tables, bad values and a bad file are errors that
// name the key (or variable) and the file.
func TestConfigureRefusals(t *testing.T) {
	noEnv := Env{Getenv: func(string) string { return "" }}
	for _, tc := range []struct{ text, want string }{
		{"htp = \"x\"\n", `unknown setting "htp"`},
		{"config = \"other.toml\"\n", `unknown setting "config"`},
		{"[mqtt]\naddr = \"x\"\n", `unknown setting "mqtt"`},
		{"max-failures = \"three\"\n", "max-failures"},
		{"session-ttl = 5\n", "session-ttl"},
		{"http = { host = \"x\" }\n", "http"},
		{"http = \"unterminated\n", "camotp.toml"},
		{"trusted-proxies = [\"10.0.0.0/8,x\"]\n", "comma"},
	} {
		fs, _ := testFlags()
		err := configure(fs, noEnv, writeConfig(t, tc.text), "config")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.text, err, tc.want)
		}
	}
	fs, _ := testFlags()
	err := configure(fs, Env{Getenv: func(k string) string {
		if k == "CAMOTP_MAX_FAILURES" {
			return "many"
		}
		return ""
	}}, "", "config")
	if err == nil || !strings.Contains(err.Error(), "CAMOTP_MAX_FAILURES") {
		t.Fatalf("a bad environment value: %v", err)
	}
	if err := configure(fs, noEnv, filepath.Join(t.TempDir(), "missing.toml"), "config"); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// serve --config: the server listens where the file says; the
// environment overrides the file.
func TestServeConfigFile(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	httpAddr, mqttAddr, envHTTP := free(), free(), free()
	dir := t.TempDir()
	path := writeConfig(t, fmt.Sprintf("data = %q\nhttp = %q\nmqtt = %q\n", filepath.Join(dir, "data"), httpAddr, mqttAddr))
	m := startMain(t, Env{Getenv: func(k string) string {
		if k == "CAMOTP_HTTP" {
			return envHTTP
		}
		return ""
	}}, "serve", "--config", path)
	m.waitUntil(t, "the server ready on the environment's address", func() bool {
		resp, err := http.Get("http://" + envHTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if _, err := os.Stat(filepath.Join(dir, "data", "master.key")); err != nil {
		t.Fatalf("the data directory of the file: %v", err)
	}
	if c := m.stop(t); c != 0 {
		t.Fatalf("serve stopped: exit %d", c)
	}
}

// FuzzConfigure: no file makes configure panic; what it accepts sets only
// known flags.
func FuzzConfigure(f *testing.F) {
	for _, s := range []string{"http = \"x\"\n", "max-failures = 5\n", "trusted-proxies = [\"a\", 1]\n", "[t]\nk=1\n", "a.b = 1\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		fs, _ := testFlags()
		configure(fs, Env{Getenv: func(string) string { return "" }}, path, "config")
	})
}

// The settings file the package ships holds only real settings: with its
// examples uncommented, serve takes every key.
func TestShippedConfigKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "packaging", "camotp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n := 0
	example := regexp.MustCompile(`^# ([a-z][a-z0-9-]* = .*)$`)
	for _, line := range strings.Split(string(data), "\n") {
		if m := example.FindStringSubmatch(line); m != nil {
			b.WriteString(m[1] + "\n")
			n++
		}
	}
	if n < 5 {
		t.Fatalf("%d example settings found in packaging/camotp.toml", n)
	}
	fs := serveCmd(Env{Getenv: func(string) string { return "" }}).Flags()
	if err := configure(fs, Env{Getenv: func(string) string { return "" }}, writeConfig(t, b.String()), "config"); err != nil {
		t.Fatalf("the shipped examples:\n%s\n%v", b.String(), err)
	}
}
