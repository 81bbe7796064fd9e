package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// envName is the environment variable that sets flag name:
// CAMOTP_ and the name in upper case with "_" for "-" (--mqtt-max-conns:
// CAMOTP_MQTT_MAX_CONNS).
func envName(flag string) string {
	return "CAMOTP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configure sets the flags of fs that the command line did not: from the
// environment (envName), else from the TOML file at path ("" for none),
// whose keys are the flags' names (http = "0.0.0.0:8443", max-failures =
// 3, trusted-proxies = ["10.0.0.0/8"]). So a flag beats the environment,
// which beats the file, which beats the default. A key that names no
// flag, a nested table, and a value its flag refuses are errors naming the
// key and where it came from. skip lists flags neither sets (e.g.
// "config" itself).
func configure(fs *pflag.FlagSet, env Env, path string, skip ...string) error {
	file := map[string]any{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if _, err := toml.Decode(string(data), &file); err != nil {
			return usagef("--config %s: %v", path, err)
		}
		var unknown []string
		for key := range file {
			if f := fs.Lookup(key); f == nil || slices.Contains(skip, key) || key == "help" {
				unknown = append(unknown, key)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			return usagef("--config %s: unknown setting %s (the settings are serve's flags, named as on the command line)", path, strings.Join(quoteAll(unknown), ", "))
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || slices.Contains(skip, f.Name) {
			return
		}
		if v := env.Getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, usagef("%s=%q (for --%s): %v", envName(f.Name), v, f.Name, err))
			}
			return
		}
		raw, ok := file[f.Name]
		if !ok {
			return
		}
		v, err := tomlValue(raw)
		if err == nil {
			err = fs.Set(f.Name, v)
		}
		if err != nil {
			errs = append(errs, usagef("--config %s: %s: %v", path, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// tomlValue is a TOML value as a flag takes it on the command line: an
// array as its items joined by commas.
func tomlValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool, int64, float64:
		return fmt.Sprint(x), nil
	case []any:
		items := make([]string, len(x))
		for i, it := range x {
			s, err := tomlValue(it)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list item %q holds a comma", s)
			}
			items[i] = s
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or list, got %T", v)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
