package cli

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/broker"
	"github.com/camotp/camotp/internal/auditsyslog"
	"github.com/camotp/camotp/internal/fdlimit"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/notify"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/secretfile"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/oidc"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/radius"
	"github.com/camotp/camotp/signin"
)

// Defaults of serve and the clients that talk to it.
const (
	defaultHTTP   = "127.0.0.1:8080"
	defaultMQTT   = "127.0.0.1:1883"
	defaultRADIUS = "127.0.0.1:1812" // camotp demo only: serve has RADIUS off unless --radius
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

// serveCmd is camotp serve: the server.
func serveCmd(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve [--data DIR] [--http ADDR] [--mqtt ADDR]",
		Short: "the server: embedded MQTT broker, camera registry and provisioning, sign-in, admin and OpenID Connect APIs",
		Args:  noArgs,
	}
	fs := c.Flags()
	var cfg server.Config
	fs.StringVar(&cfg.DataDir, "data", ".camotp", "data directory (database, keys, admin token)")
	fs.StringVar(&cfg.DB, "db", "", "database: sqlite:PATH, or postgres://USER@HOST:PORT/DB shared by several nodes (password from PGPASSWORD or PGPASSFILE; default: camotp.db in --data; CAMOTP_DB also sets it)")
	fs.StringVar(&cfg.HTTPAddr, "http", defaultHTTP, "HTTP listen address")
	fs.DurationVar(&cfg.ResendEvery, "resend-every", server.DefaultResendEvery, "a pending command not acknowledged within this time is published again (by one node)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this node's name on an external broker, unique among the nodes sharing it (default: the host name)")
	fs.StringVar(&cfg.MQTTAddr, "mqtt", defaultMQTT, "embedded MQTT broker listen address")
	fs.StringVar(&cfg.MQTTTLSAddr, "mqtt-tls", "", "embedded broker TLS listen address (with --mqtt-tls-cert/--mqtt-tls-key)")
	fs.StringVar(&cfg.MQTTTLSCert, "mqtt-tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&cfg.MQTTTLSKey, "mqtt-tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&cfg.MQTTExternal, "mqtt-external", "", "use this MQTT broker (tcp://HOST:PORT) instead of the embedded one")
	fs.StringVar(&cfg.MQTTUsername, "mqtt-username", "", "username on the external broker (password from CAMOTP_MQTT_PASSWORD)")
	dynsecAdmin := fs.String("mqtt-dynsec-admin", "", "administer mosquitto's dynamic security plugin on --mqtt-external as this user: one broker login per camera, kept in step with the registry (docs/scale-out.md)")
	dynsecPWFile := fs.String("mqtt-dynsec-password-file", "", "file (mode 0600) holding the --mqtt-dynsec-admin password")
	fs.BoolVar(&cfg.MQTTHook, "mqtt-hook", false, "serve the HTTP authentication/authorisation hook for an external broker such as EMQX 5 ("+broker.HookAuthPath+", "+broker.HookACLPath+"; bearer token in DATA/"+server.MQTTHookTokenFile+")")
	fs.IntVar(&cfg.MQTTMaxConns, "mqtt-max-conns", 0, fmt.Sprintf("cap on the embedded broker's open connections, CONNECT sent or not (0: open-file limit minus %d; -1: no cap)", server.MQTTFDReserve))
	fs.IntVar(&cfg.MQTTMaxConnsPerIP, "mqtt-max-conns-per-ip", 0, "cap on the embedded broker's open connections from one address (0: no cap)")
	fs.DurationVar(&cfg.MQTTConnectTimeout, "mqtt-connect-timeout", broker.DefaultConnectTimeout, "close an MQTT connection that has not sent CONNECT within this time")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	vc := signin.DefaultConfig()
	fs.DurationVar(&vc.TrustFor, "trust-for", vc.TrustFor, "how long \"Keep me signed in\" skips MFA on a browser")
	fs.DurationVar(&vc.SessionTTL, "session-ttl", vc.SessionTTL, "session lifetime")
	fs.Int64Var(&vc.Window, "window", vc.Window, "accepted steps either side of the expected one")
	fs.Int64Var(&vc.ResyncRange, "resync-range", vc.ResyncRange, "steps searched to detect a camera whose clock is off")
	fs.IntVar(&vc.Limits.MaxFailures, "max-failures", vc.Limits.MaxFailures, "failed attempts from one (account, IP) before it is blocked")
	fs.DurationVar(&vc.Limits.Block, "block-for", vc.Limits.Block, "how long an (account, IP) pair is blocked")
	fs.IntVar(&vc.Limits.AccountCeiling, "account-ceiling", vc.Limits.AccountCeiling, "failures on one account from any source before account backoff")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key for --tls-cert")
	fs.BoolVar(&cfg.SecureCookies, "secure-cookies", false, "mark cookies Secure although serving HTTP (TLS terminated by a proxy)")
	proxies := fs.String("trusted-proxies", "", "CIDR[,CIDR…] of reverse proxies whose X-Forwarded-For names the client (default none: the header is ignored)")
	argon := password.DefaultParams()
	argonMem := fs.Uint("argon2-memory", uint(argon.Memory>>10), "argon2id memory per password hash, MiB (OWASP: 19)")
	argonTime := fs.Uint("argon2-time", uint(argon.Time), "argon2id passes (OWASP: 2)")
	argonThreads := fs.Uint("argon2-threads", uint(argon.Threads), "argon2id parallelism (OWASP: 1)")
	hashBudget := fs.Int("hash-memory-budget", password.DefaultBudget>>20, "MiB that concurrent password hashing may use; sign-ins past it wait, then get 503")
	fs.IntVar(&vc.HashesPerSource, "hashes-per-source", signin.DefaultHashesPerSource, "password checks one client address (IPv6: /64) may have in progress at once; past it a sign-in gets 503")
	fs.DurationVar(&vc.SentCodeTTLEmail, "sent-code-ttl-email", signin.SentCodeTTL, "how long a code sent by email is valid (30s to 15m)")
	fs.DurationVar(&vc.SentCodeTTLPhone, "sent-code-ttl-phone", signin.SentCodeTTL, "how long a code sent by text message or phone call is valid (30s to 15m)")
	var smtpCfg notify.SMTP
	fs.StringVar(&smtpCfg.Host, "smtp-host", "", "email codes through this SMTP server")
	fs.IntVar(&smtpCfg.Port, "smtp-port", 587, "SMTP port")
	fs.StringVar(&smtpCfg.From, "smtp-from", "", "sender address of code emails")
	fs.StringVar(&smtpCfg.Security, "smtp-security", "starttls", "starttls, tls (implicit, port 465) or none (loopback relay only)")
	fs.StringVar(&smtpCfg.Username, "smtp-username", "", "SMTP login (password from CAMOTP_SMTP_PASSWORD)")
	smsHook := fs.String("sms-webhook", "", "text codes by POSTing JSON to this URL (token from CAMOTP_WEBHOOK_TOKEN)")
	callHook := fs.String("call-webhook", "", "phone-call codes by POSTing JSON to this URL (token from CAMOTP_WEBHOOK_TOKEN)")
	radiusAddr := fs.String("radius", "", "serve RADIUS (UDP) on this address, e.g. 127.0.0.1:1812 (default off; clients: camotp admin radius add-client)")
	radiusLegacy := fs.Bool("radius-allow-legacy", false, "accept RADIUS Access-Requests without a Message-Authenticator (exposed to BlastRADIUS, CVE-2024-3596)")
	radiusSep := fs.String("radius-separator", radius.DefaultSeparator, "RADIUS: password<separator>code in one request, for clients that cannot answer a challenge (\"\" turns it off)")
	fs.StringVar(&cfg.OrgName, "org-name", "", "the agency's name, shown on every page and in page titles")
	fs.DurationVar(&cfg.ClockDriftAlert, "clock-drift-alert", provisioning.DefaultClockDriftAlert, "flag a camera as drifting (log, metric, console badge, admin camera list --drifting) when its signed clock report is off by more than this")
	fs.DurationVar(&vc.ClockFresh, "clock-report-fresh", signin.DefaultClockFresh, "a camera's signed clock report centres the window its codes are checked in for this long (negative: never)")
	fs.StringVar(&cfg.OIDCIssuer, "issuer", "", "turn on the OpenID Connect provider with this issuer URL (https://…; http only on a loopback host)")
	fs.BoolVar(&cfg.Notify.DevOutbox, "dev-outbox", false, "development only: keep every code message in the database and show them at /dev/outbox")
	auditSyslog := fs.String("audit-syslog", "", "forward the audit log as RFC 5424 syslog to tcp://HOST:PORT or tls://HOST:PORT (rows wait in the database while the receiver is down; docs/fleet.md)")
	auditSyslogCA := fs.String("audit-syslog-ca", "", "CA certificate(s), PEM, that a tls:// --audit-syslog receiver's certificate must chain to (default: the system's)")
	auditSyslogCert := fs.String("audit-syslog-cert", "", "client certificate (PEM) for a tls:// --audit-syslog receiver that asks for one")
	auditSyslogKey := fs.String("audit-syslog-key", "", "private key (PEM, mode 0600) of --audit-syslog-cert")
	configPath := fs.String("config", "", "settings file (TOML: serve's flags as keys, e.g. http = \":8443\"); default: CAMOTP_CONFIG); every flag may also come from CAMOTP_<FLAG> (e.g. CAMOTP_MQTT_MAX_CONNS); a flag beats the environment, which beats the file")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if *configPath == "" {
			*configPath = env.Getenv("CAMOTP_CONFIG")
		}
		if err := configure(fs, env, *configPath, "config"); err != nil {
			return err
		}
		var err error
		if cfg.ResendEvery <= 0 {
			return usagef("serve: --resend-every must be > 0")
		}
		if cfg.OIDCIssuer != "" {
			if err := oidc.CheckIssuer(cfg.OIDCIssuer); err != nil {
				return usagef("serve: --issuer: %v", err)
			}
		}
		if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
			return usagef("serve: --tls-cert and --tls-key go together")
		}
		if vc.Window < 0 || vc.ResyncRange < vc.Window || vc.Limits.MaxFailures < 1 || vc.Limits.AccountCeiling < 1 || vc.TrustFor < 0 {
			return usagef("serve: --window ≥ 0, --resync-range ≥ --window, --max-failures ≥ 1, --account-ceiling ≥ 1, --trust-for ≥ 0")
		}
		vc.Argon2 = password.Params{Memory: uint32(*argonMem) << 10, Time: uint32(*argonTime), Threads: uint8(min(*argonThreads, 255))}
		if err := vc.Argon2.Validate(); err != nil {
			return usagef("serve: --argon2-*: %v", err)
		}
		vc.HashBudget = int64(*hashBudget) << 20
		if vc.HashBudget < 2*int64(vc.Argon2.Memory)<<10 {
			return usagef("serve: --hash-memory-budget %d MiB is below two hashes' memory (%d MiB)", *hashBudget, 2*(*argonMem))
		}
		if cfg.TrustedProxies, err = httpx.ParsePrefixes(*proxies); err != nil {
			return usagef("serve: --trusted-proxies: %v", err)
		}
		cfg.SignIn = &vc
		if smtpCfg.Host != "" {
			if smtpCfg.From == "" {
				return usagef("serve: --smtp-host needs --smtp-from")
			}
			if s := smtpCfg.Security; s != "starttls" && s != "tls" && s != "none" {
				return usagef("serve: --smtp-security: want starttls, tls or none")
			}
			smtpCfg.Password = env.Getenv("CAMOTP_SMTP_PASSWORD")
			cfg.Notify.SMTP = &smtpCfg
		}
		for _, h := range []struct {
			url  string
			dest **notify.Webhook
		}{{*smsHook, &cfg.Notify.SMSWebhook}, {*callHook, &cfg.Notify.CallWebhook}} {
			if h.url == "" {
				continue
			}
			if u, err := url.Parse(h.url); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return usagef("serve: webhook %q: want an http(s) URL", h.url)
			}
			*h.dest = &notify.Webhook{URL: h.url, Token: env.Getenv("CAMOTP_WEBHOOK_TOKEN")}
		}
		if (cfg.MQTTTLSAddr != "") != (cfg.MQTTTLSCert != "" && cfg.MQTTTLSKey != "") {
			return usagef("serve: --mqtt-tls needs --mqtt-tls-cert and --mqtt-tls-key")
		}
		if (*dynsecAdmin == "") != (*dynsecPWFile == "") {
			return usagef("serve: --mqtt-dynsec-admin and --mqtt-dynsec-password-file go together")
		}
		if *dynsecAdmin != "" {
			if cfg.MQTTExternal == "" {
				return usagef("serve: --mqtt-dynsec-admin needs --mqtt-external (a mosquitto with the dynamic security plugin)")
			}
			pw, err := secretfile.ReadPrivate(*dynsecPWFile)
			if err != nil {
				return usagef("serve: --mqtt-dynsec-password-file: %v", err)
			}
			cfg.MQTTDynsec = &server.DynsecConfig{AdminUser: *dynsecAdmin, AdminPassword: pw}
		}
		if (cfg.MQTTDynsec != nil || cfg.MQTTHook) && (cfg.MQTTUsername != "" || env.Getenv("CAMOTP_MQTT_PASSWORD") != "") {
			return usagef("serve: with --mqtt-dynsec-admin or --mqtt-hook the server logs in to the broker as %s with DATA/%s: drop --mqtt-username and CAMOTP_MQTT_PASSWORD",
				provisioning.ServerUsername, server.MQTTSecretFile)
		}
		if cfg.MQTTMaxConns < -1 || cfg.MQTTMaxConnsPerIP < 0 || cfg.MQTTConnectTimeout <= 0 {
			return usagef("serve: --mqtt-max-conns ≥ -1, --mqtt-max-conns-per-ip ≥ 0, --mqtt-connect-timeout > 0")
		}
		if *radiusAddr != "" {
			cfg.RADIUS = &server.RADIUSConfig{Addr: *radiusAddr, AllowLegacy: *radiusLegacy, Separator: *radiusSep}
		}
		if *auditSyslog != "" {
			t, err := auditsyslog.ParseTarget(*auditSyslog)
			if err != nil {
				return usagef("serve: --audit-syslog: %v", err)
			}
			cfg.AuditSyslog = &auditsyslog.Config{Target: *auditSyslog}
			if t.TLS {
				if cfg.AuditSyslog.TLS, err = auditsyslog.TLSConfig(*auditSyslogCA, *auditSyslogCert, *auditSyslogKey); err != nil {
					return usagef("serve: --audit-syslog-*: %v", err)
				}
			}
		}
		if (*auditSyslogCA != "" || *auditSyslogCert != "" || *auditSyslogKey != "") && (cfg.AuditSyslog == nil || cfg.AuditSyslog.TLS == nil) {
			return usagef("serve: --audit-syslog-ca, --audit-syslog-cert and --audit-syslog-key need a tls:// --audit-syslog")
		}
		log, err := newLogger(env, *logFormat)
		if err != nil {
			return err
		}
		// Every camera holds a socket: run with the whole hard limit.
		if soft, hard, err := fdlimit.Raise(); err != nil {
			log.Warn("raise open-file limit", "err", err, "nofile_soft", soft, "nofile_hard", hard)
		} else {
			log.Info("open-file limit", "nofile_soft", soft, "nofile_hard", hard)
		}
		cfg.Log = log
		if cfg.DB == "" {
			cfg.DB = env.Getenv("CAMOTP_DB")
		}
		cfg.MasterKeyEnv = env.Getenv(masterkey.EnvVar)
		cfg.MQTTPassword = env.Getenv("CAMOTP_MQTT_PASSWORD")
		cfg.MetricsToken = env.Getenv("CAMOTP_METRICS_TOKEN")
		srv, err := server.Start(ctx, cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		mqttAddr := srv.MQTTAddr()
		if mqttAddr == "" {
			mqttAddr = cfg.MQTTExternal + " (external)"
		}
		if srv.OIDC != nil {
			log.Info("openid connect provider on", "issuer", srv.OIDC.Issuer(), "discovery", srv.OIDC.Issuer()+oidc.PathDiscovery)
		}
		log.Info("camotp serving", "http", "http://"+srv.HTTPAddr(), "mqtt", mqttAddr, "radius", cmp.Or(srv.RADIUSAddr(), "off"), "db", srv.DB(),
			"admin_token_file", fmt.Sprintf("%s/%s", cfg.DataDir, server.AdminTokenFile))
		<-ctx.Done()
		log.Info("camotp stopping")
		return nil
	}
	return c
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
