package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/server"
)

// Defaults of serve and the clients that talk to it.
const (
	defaultHTTP   = "127.0.0.1:8080"
	defaultMQTT   = "127.0.0.1:1883"
	defaultServer = "http://" + defaultHTTP
)

func newLogger(env Env, format string) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(env.Stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, nil)), nil
	}
	return nil, usagef("--log-format: want text or json, got %q", format)
}

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "serve")
	var cfg server.Config
	fs.StringVar(&cfg.DataDir, "data", ".camotp", "data directory (database, keys, admin token)")
	fs.StringVar(&cfg.HTTPAddr, "http", defaultHTTP, "HTTP listen address")
	fs.StringVar(&cfg.MQTTAddr, "mqtt", defaultMQTT, "embedded MQTT broker listen address")
	fs.StringVar(&cfg.MQTTTLSAddr, "mqtt-tls", "", "embedded broker TLS listen address (with --mqtt-tls-cert/--mqtt-tls-key)")
	fs.StringVar(&cfg.MQTTTLSCert, "mqtt-tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&cfg.MQTTTLSKey, "mqtt-tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&cfg.MQTTExternal, "mqtt-external", "", "use this MQTT broker (tcp://HOST:PORT) instead of the embedded one")
	fs.StringVar(&cfg.MQTTUsername, "mqtt-username", "", "username on the external broker (password from CAMOTP_MQTT_PASSWORD)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if (cfg.MQTTTLSAddr != "") != (cfg.MQTTTLSCert != "" && cfg.MQTTTLSKey != "") {
		return usagef("serve: --mqtt-tls needs --mqtt-tls-cert and --mqtt-tls-key")
	}
	log, err := newLogger(env, *logFormat)
	if err != nil {
		return err
	}
	cfg.Log = log
	cfg.MasterKeyEnv = env.Getenv(masterkey.EnvVar)
	cfg.MQTTPassword = env.Getenv("CAMOTP_MQTT_PASSWORD")
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	mqttAddr := srv.MQTTAddr()
	if mqttAddr == "" {
		mqttAddr = cfg.MQTTExternal + " (external)"
	}
	log.Info("camotp serving", "http", "http://"+srv.HTTPAddr(), "mqtt", mqttAddr,
		"admin_token_file", fmt.Sprintf("%s/%s", cfg.DataDir, server.AdminTokenFile))
	<-ctx.Done()
	log.Info("camotp stopping")
	return nil
}

// readTokenFile reads an admin token file.
func readTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	return string(trimSpace(data)), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
