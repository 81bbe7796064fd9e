// Package server wires camotp's server process: the SQLite store, the
// embedded MQTT broker (or an external one), the provisioning service and
// the HTTP APIs. cmd/camotp's "serve" and the end-to-end tests start it.
package server

import (
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/api"
	"github.com/camotp/camotp/broker"
	"github.com/camotp/camotp/broker/dynsec"
	"github.com/camotp/camotp/internal/auditsyslog"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/fdlimit"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/metrics"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/notify"
	"github.com/camotp/camotp/internal/secretfile"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/dburl"
	"github.com/camotp/camotp/oidc"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/radius"
	"github.com/camotp/camotp/rollover"
	"github.com/camotp/camotp/signin"
	"github.com/camotp/camotp/web"
)

// MQTTFDReserve is how many file descriptors the default MQTT connection
// cap leaves for HTTP clients, the database and the rest of the process.
const MQTTFDReserve = 256

// defaultMQTTMaxConns sizes the broker's connection cap to the open-file
// limit, keeping MQTTFDReserve (or half of a small limit) for the rest.
func defaultMQTTMaxConns(softLimit uint64) int {
	if softLimit >= 2*MQTTFDReserve {
		return int(min(softLimit-MQTTFDReserve, 1<<30))
	}
	return int(softLimit / 2)
}

// Files the server keeps in its data directory.
const (
	DBFile            = dburl.DefaultFile
	MasterKeyFile     = "master.key"
	AdminTokenFile    = "admin-token"
	MQTTSecretFile    = "mqtt-server.secret"
	ServerBoxKeyFile  = "server-box.key"
	MQTTHookTokenFile = "mqtt-hook.token"
)

// SharedFiles are the files of the data directory that every node of one
// installation must hold the same copy of: the master key sealing the
// database's secrets, the key cameras pin, the admin token, the server's
// login on an external broker, the EMQX hook's token.
var SharedFiles = []string{MasterKeyFile, ServerBoxKeyFile, AdminTokenFile, MQTTSecretFile, MQTTHookTokenFile}

// Config is the server's setup.
type Config struct {
	DataDir string
	// NodeID names this node on an external broker (its link's client ID
	// is camotp-server-NodeID; default: the host name). Nodes sharing a
	// broker need different ones.
	NodeID string
	// ResendEvery is how long a pending command waits for its ack before
	// some node publishes it again (0: DefaultResendEvery).
	ResendEvery time.Duration
	// RolloverTick is how often the seed rollover schedule runs (0:
	// rollover.DefaultTick; below 0: never on its own, a test calls
	// Server.Rollover.Step).
	RolloverTick time.Duration
	// DB names the database (see dburl): "" is the SQLite file DBFile in
	// DataDir; a postgres:// URL lets several nodes share one database.
	DB       string
	HTTPAddr string
	// MQTTAddr is the embedded broker's plain listener.
	MQTTAddr string
	// MQTTTLSAddr with MQTTTLSCert/Key adds a TLS listener.
	MQTTTLSAddr, MQTTTLSCert, MQTTTLSKey string
	// MQTTMaxConns caps the embedded broker's open connections, CONNECT
	// sent or not (0: the soft open-file limit minus MQTTFDReserve; -1: no cap).
	MQTTMaxConns int
	// MQTTMaxConnsPerIP caps its connections from one source address (0: no cap).
	MQTTMaxConnsPerIP int
	// MQTTConnectTimeout is how long a new MQTT connection may take to send
	// CONNECT (0: broker.DefaultConnectTimeout).
	MQTTConnectTimeout time.Duration
	// MQTTExternal, when set (tcp://HOST:PORT or ssl://...), replaces the
	// embedded broker; MQTTUsername/Password authenticate the server there.
	MQTTExternal               string
	MQTTUsername, MQTTPassword string
	// MQTTDynsec, with MQTTExternal, makes the server the administrator of
	// mosquitto's dynamic security plugin there: it keeps one client and
	// role per registered camera (the camera's derived password) and its own
	// client (ServerUsername, the MQTT server secret), so MQTTUsername and
	// MQTTPassword stay empty.
	MQTTDynsec *DynsecConfig
	// MQTTHook serves the HTTP authentication and authorisation hook an
	// external broker such as EMQX 5 calls (broker.HookAuthPath,
	// broker.HookACLPath), with the bearer token in DATA/mqtt-hook.token;
	// the server logs in there as ServerUsername with the MQTT server
	// secret, so MQTTUsername and MQTTPassword stay empty.
	MQTTHook bool
	// SignIn tunes sign-in (zero value: signin.DefaultConfig()).
	SignIn *signin.Config
	// SecureCookies forces Secure cookies (TLS terminated by a proxy).
	SecureCookies bool
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (none: the header is ignored).
	TrustedProxies []netip.Prefix
	// TLSCert/TLSKey serve HTTPS instead of HTTP.
	TLSCert, TLSKey string
	// Notify configures how codes are sent by email, text and call.
	Notify NotifyConfig
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// MasterKeyEnv is the value of CAMOTP_MASTER_KEY ("" to use the key file).
	MasterKeyEnv string
	// RADIUS, when set, serves RADIUS (off by default; see StartRADIUS).
	RADIUS *RADIUSConfig
	// OIDCIssuer, when set, turns on the OpenID Connect provider with this
	// issuer URL (https; http only on a loopback host).
	OIDCIssuer string
	// OrgName names the agency on every page ("" none).
	OrgName string
	Log     *slog.Logger
	Now     func() time.Time

	// AuditSyslog, when set, forwards the audit log to a syslog receiver
	// (its Target and TLS; the cursor file defaults to
	// DATA/auditsyslog.CursorFile, the hostname to the node's name).
	AuditSyslog *auditsyslog.Config

	// ClockDriftAlert is the camera clock offset past which a camera is
	// flagged as drifting (zero: provisioning.DefaultClockDriftAlert).
	ClockDriftAlert time.Duration
}

// DynsecConfig is the login of the dynamic security plugin's admin client
// (made by 'mosquitto_ctrl dynsec init').
type DynsecConfig struct {
	AdminUser, AdminPassword string
}

// NotifyConfig selects the senders of one-time codes. A channel without a
// sender cannot be enabled in the organisation policy.
type NotifyConfig struct {
	SMTP        *notify.SMTP    // email
	SMSWebhook  *notify.Webhook // text messages
	CallWebhook *notify.Webhook // phone calls
	// DevOutbox keeps every message in the database instead (all three
	// channels), shown at /dev/outbox: development and demos only.
	DevOutbox bool
}

// router builds the senders.
func (n NotifyConfig) router(st storage.Store) notify.Router {
	r := notify.Router{}
	if n.DevOutbox {
		box := notify.Outbox{Store: st}
		for _, c := range []string{notify.Email, notify.SMS, notify.Call} {
			r[c] = box
		}
		return r
	}
	if n.SMTP != nil {
		r[notify.Email] = n.SMTP
	}
	if n.SMSWebhook != nil {
		r[notify.SMS] = n.SMSWebhook
	}
	if n.CallWebhook != nil {
		r[notify.Call] = n.CallWebhook
	}
	return r
}

// senders adapts the notify senders to the sign-in service.
type senders struct{ r notify.Router }

func (s senders) Send(ctx context.Context, m signin.Message) error {
	return s.r.Send(ctx, notify.Message{Channel: m.Channel, To: m.To, Subject: m.Subject, Text: m.Text})
}

func (s senders) Configured(channel string) bool { return s.r.Configured(channel) }

// RADIUSConfig turns on the RADIUS server.
type RADIUSConfig struct {
	// Addr is the UDP listen address, e.g. 127.0.0.1:1812.
	Addr string
	// AllowLegacy accepts Access-Requests without a Message-Authenticator.
	AllowLegacy bool
	// Separator splits "password<sep>code" in one request ("" turns that
	// mode off).
	Separator string
}

// Server is a running camotp server.
type Server struct {
	Store        storage.Store
	Provisioning *provisioning.Service
	SignIn       *signin.Service
	// OIDC is the OpenID Connect provider (nil when it is off).
	OIDC       *oidc.Provider
	AdminToken string
	Metrics    *metrics.Metrics
	// Rollover is the seed rollover schedule.
	Rollover *rollover.Scheduler

	cfg       Config
	broker    *broker.Broker
	link      atomic.Pointer[provisioning.ServerLink]
	dynsec    *dynsec.Client
	stopSync  context.CancelFunc // ends a running dynsec sync
	syncing   sync.WaitGroup     // running dynsec syncs
	syncMu    sync.Mutex         // held by the running dynsec sync
	syncStart sync.Mutex         // orders starting a sync with Close
	http      *http.Server
	httpAddr  string
	db        dburl.Target // the database, as --db named it
	ready     atomic.Bool
	mux       *http.ServeMux
	closed    sync.Once
	closeErr  error
	stop      chan struct{} // ends the janitor
	janitor   sync.WaitGroup

	radius atomic.Pointer[radius.Server]

	// AuditSyslog forwards the audit log (nil when not configured).
	AuditSyslog *auditsyslog.Forwarder
	stopFwd     context.CancelFunc
	fwdDone     chan struct{}

	probing    sync.Mutex                  // held by the one write probe running
	probeStart atomic.Int64                // unix ns when the running probe began
	probe      atomic.Pointer[probeResult] // the last probe's answer
}

// probeResult is a write probe's answer and when it came.
type probeResult struct {
	err error
	at  time.Time
}

// probeTTL is how long a write probe's answer stands: /readyz needs no
// authentication, and a flood of it must not become a flood of fsyncs.
const probeTTL = time.Second

// probeStuck is how long a running probe may take before /readyz reports
// the storage as not answering.
const probeStuck = 5 * time.Second

// probeWrite is Store.ProbeWrite, at most once per probeTTL and never two
// at once: other callers get the last answer without waiting, so a stalled
// disk holds one goroutine, not every /readyz request; a probe running
// longer than probeStuck is an answer in itself. The probe runs on its own
// context: a client hanging up is not a storage fault.
func (s *Server) probeWrite() error {
	if r := s.probe.Load(); r != nil && time.Since(r.at) < probeTTL {
		return r.err
	}
	if !s.probing.TryLock() {
		if d := time.Since(time.Unix(0, s.probeStart.Load())); d > probeStuck {
			return fmt.Errorf("storage write probe has not finished in %s", d.Round(time.Second))
		}
		if r := s.probe.Load(); r != nil {
			return r.err
		}
		return nil
	}
	defer s.probing.Unlock()
	s.probeStart.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), probeStuck)
	defer cancel()
	err := s.Store.ProbeWrite(ctx)
	s.probe.Store(&probeResult{err: err, at: time.Now()})
	return err
}

// nodeID is the node's name in its MQTT client ID: the configured one, or
// the host name (stable across restarts, so the broker keeps the node's
// persistent session).
func nodeID(configured string) string {
	if configured != "" {
		return configured
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "node"
}

// DefaultResendEvery is how long a pending command waits for its ack
// before some node publishes it again.
const DefaultResendEvery = 30 * time.Second

// resendLimit bounds the commands one node resends per pass.
const resendLimit = 1000

// janitorInterval is how often expired tokens and idle throttle counters
// are deleted.
const janitorInterval = 10 * time.Minute

// sweep deletes expired tokens and throttle counters with nothing left to
// remember, so neither table grows with every name an attacker tries.
func (s *Server) sweep(ctx context.Context, limits signin.Limits) {
	if err := s.Store.PurgeExpired(ctx); err != nil {
		s.cfg.Log.Warn("purge expired tokens", "err", err)
	}
	if err := s.Store.PurgeThrottles(ctx, s.cfg.Now(), max(limits.Block, limits.AccountWindow, limits.BackoffMax)); err != nil {
		s.cfg.Log.Warn("purge throttle counters", "err", err)
	}
}

// every runs fn each interval, with a context bounded by timeout, until
// Close.
func (s *Server) every(interval, timeout time.Duration, fn func(context.Context)) {
	s.janitor.Add(1)
	go func() {
		defer s.janitor.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				fn(ctx)
				cancel()
			}
		}
	}()
}

// cameraKeys adapts the store for the broker's auth hook.
type cameraKeys struct{ st storage.Store }

func (k cameraKeys) CameraKey(ctx context.Context, serial string) (camkey.PublicKey, error) {
	c, err := k.st.Camera(ctx, serial)
	if err != nil {
		return camkey.PublicKey{}, err
	}
	return camkey.ParsePublicKey(c.PublicKey)
}

// startDynsec connects to mosquitto's dynamic security plugin as its
// admin and sets up the server's own login (the MQTT link needs it next);
// then brings the camera logins in step with the registry in the
// background (mosquitto 2.0 rewrites its file after every change: a first
// sync of thousands of cameras takes minutes), again on every reconnect of
// the admin link, and ensures a camera's login when it is added or sent a
// command.
func (s *Server) startDynsec(ctx context.Context, brokerURL string, boxKey [32]byte, serverSecret string) error {
	log := s.cfg.Log.With("component", "dynsec")
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dynsec.Dial(dctx, dynsec.Config{Broker: brokerURL, Username: s.cfg.MQTTDynsec.AdminUser,
		Password: s.cfg.MQTTDynsec.AdminPassword, Log: log})
	if err != nil {
		return err
	}
	s.dynsec = c
	// No client ID bound to the server's login: each node has its own.
	acc := dynsec.NewAccounts(c, boxKey, dynsec.ServerLogin{Username: provisioning.ServerUsername, Password: serverSecret}, log)
	if err := acc.Setup(dctx); err != nil {
		return err
	}
	bg, stop := context.WithCancel(context.Background())
	s.stopSync = stop
	var queued atomic.Bool // a sync waits to run: a flapping link adds no more
	resync := func() {
		s.syncStart.Lock()
		defer s.syncStart.Unlock()
		if bg.Err() != nil {
			return // closing
		}
		if !queued.CompareAndSwap(false, true) {
			return // the waiting sync will read the registry as it is then
		}
		s.syncing.Add(1)
		go func() {
			defer s.syncing.Done()
			s.syncMu.Lock() // one sync at a time; a reconnect's waits for the one it cut short
			defer s.syncMu.Unlock()
			queued.Store(false)
			ctx, cancel := context.WithTimeout(bg, dynsecSyncTimeout)
			defer cancel()
			if err := s.syncDynsec(ctx, acc); err != nil && bg.Err() == nil {
				log.Warn("dynsec sync failed; it runs again when the admin link reconnects, and each camera's login is ensured when it is sent a command", "err", err)
			}
		}()
	}
	c.OnReconnect(resync)
	s.Provisioning.SetBrokerAccounts(acc)
	resync()
	return nil
}

// dynsecSyncTimeout bounds one sync of the broker's accounts.
const dynsecSyncTimeout = 2 * time.Hour

// syncDynsec makes the plugin's accounts match the registered cameras.
func (s *Server) syncDynsec(ctx context.Context, acc *dynsec.Accounts) error {
	_, err := acc.Sync(ctx, cameraDirectory{s.Store, s.cfg.Log})
	return err
}

// cameraDirectory adapts the store for the dynsec sync.
type cameraDirectory struct {
	st  storage.Store
	log *slog.Logger
}

// Cameras lists the registered cameras with readable public keys.
func (d cameraDirectory) Cameras(ctx context.Context) ([]dynsec.Camera, error) {
	cams, err := d.st.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	reg := make([]dynsec.Camera, 0, len(cams))
	for _, c := range cams {
		if c.PublicKey == "" {
			continue // imported with its seed, no identity yet: no broker login
		}
		pub, err := camkey.ParsePublicKey(c.PublicKey)
		if err != nil {
			d.log.Error("dynsec sync: camera public key unreadable; no broker login", "serial", c.Serial, "err", err)
			continue
		}
		reg = append(reg, dynsec.Camera{Serial: c.Serial, Key: pub})
	}
	return reg, nil
}

// serveHTTP binds the HTTP address and serves the mux in the background.
func (s *Server) serveHTTP() error {
	cfg := s.cfg
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTPAddr, err)
	}
	s.httpAddr = ln.Addr().String()
	s.http = &http.Server{Handler: httpx.TrustedProxies(cfg.TrustedProxies, s.mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		var err error
		if cfg.TLSCert != "" {
			err = s.http.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("http server", "err", err)
		}
	}()
	return nil
}

// Start creates DataDir (0700) and its keys on first start, reuses them
// after, and starts every part. It returns once all are serving.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MQTTDynsec != nil && cfg.MQTTExternal == "" {
		return nil, errors.New("mqtt dynamic security needs an external broker (MQTTExternal)")
	}
	if (cfg.MQTTDynsec != nil || cfg.MQTTHook) && (cfg.MQTTUsername != "" || cfg.MQTTPassword != "") {
		return nil, errors.New("with dynamic security or the MQTT hook the server logs in as " + provisioning.ServerUsername +
			" with its own secret: no MQTT username or password")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := func(name string) string { return filepath.Join(cfg.DataDir, name) }
	key, err := masterkey.Load(path(MasterKeyFile), cfg.MasterKeyEnv)
	if err != nil {
		return nil, err
	}
	admin, err := secretfile.LoadOrCreate(path(AdminTokenFile), 32)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	mqttSecret, err := secretfile.LoadOrCreate(path(MQTTSecretFile), 32)
	if err != nil {
		return nil, fmt.Errorf("mqtt secret: %w", err)
	}
	boxRaw, err := secretfile.LoadOrCreate(path(ServerBoxKeyFile), 32)
	if err != nil {
		return nil, fmt.Errorf("server box key: %w", err)
	}
	target, err := dburl.Parse(cfg.DB, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := dburl.Open(ctx, target, key, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", target, err)
	}
	if l, ok := st.(interface{ SetLogger(func(string, error)) }); ok {
		// Before any Watch starts the change listener.
		dbLog := cfg.Log.With("component", "db")
		l.SetLogger(func(msg string, err error) { dbLog.Warn(msg, "err", err) })
	}
	s := &Server{Store: st, AdminToken: secretfile.Text(admin), cfg: cfg, mux: http.NewServeMux(), db: target}
	st.SetAuditFailureHook(func(e model.AuditEntry, err error) {
		cfg.Log.Error("audit entry lost", "action", e.Action, "actor", e.Actor, "subject", e.Subject, "result", e.Result, "err", err)
	})
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var boxKey [32]byte
	copy(boxKey[:], boxRaw)
	s.Provisioning = provisioning.NewService(st, boxKey, cfg.Now, cfg.Log.With("component", "provisioning"))
	s.Provisioning.SetClockDriftAlert(cfg.ClockDriftAlert)

	brokerURL, user, pass := cfg.MQTTExternal, cfg.MQTTUsername, cfg.MQTTPassword
	if brokerURL == "" {
		if target.Backend == dburl.Postgres {
			cfg.Log.Warn("embedded MQTT broker on a shared PostgreSQL database: run one node like this; several nodes need an external broker (--mqtt-external), or each clears the others' camera presence and resends commands to cameras it does not have")
		}
		// The embedded broker starts with no connections: whatever the
		// store says of presence is from this node's previous run.
		if err := st.ClearPresence(ctx, cfg.Now()); err != nil {
			return nil, fmt.Errorf("clear camera presence: %w", err)
		}
		bcfg := broker.Config{
			Addr: cfg.MQTTAddr,
			Auth: broker.NewAuth(cameraKeys{st}, provisioning.ServerUsername, provisioning.ServerClientID,
				[]byte(secretfile.Text(mqttSecret)), cfg.Now, cfg.Log.With("component", "broker")),
			Log:            cfg.Log.With("component", "mochi"),
			MaxConns:       cfg.MQTTMaxConns,
			MaxConnsPerIP:  cfg.MQTTMaxConnsPerIP,
			ConnectTimeout: cfg.MQTTConnectTimeout,
			Now:            cfg.Now,
			Presence:       s.Provisioning.SetPresence,
		}
		soft, _, err := fdlimit.Current()
		switch {
		case cfg.MQTTMaxConns < 0:
			bcfg.MaxConns = 0
		case cfg.MQTTMaxConns == 0 && err != nil:
			cfg.Log.Warn("mqtt connection cap: open-file limit unknown; no cap", "err", err)
		case cfg.MQTTMaxConns == 0:
			bcfg.MaxConns = defaultMQTTMaxConns(soft)
		case uint64(cfg.MQTTMaxConns) > soft && err == nil:
			cfg.Log.Warn("mqtt connection cap above the open-file limit: a flood can exhaust file descriptors",
				"max_conns", cfg.MQTTMaxConns, "nofile_soft", soft)
		}
		cfg.Log.Info("mqtt connection limits", "max_conns", bcfg.MaxConns, "max_conns_per_ip", bcfg.MaxConnsPerIP,
			"connect_timeout", cmp.Or(bcfg.ConnectTimeout, broker.DefaultConnectTimeout), "nofile_soft", soft)
		if cfg.MQTTTLSAddr != "" {
			cert, err := tls.LoadX509KeyPair(cfg.MQTTTLSCert, cfg.MQTTTLSKey)
			if err != nil {
				return nil, fmt.Errorf("mqtt tls: %w", err)
			}
			bcfg.TLSAddr, bcfg.TLS = cfg.MQTTTLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		if s.broker, err = broker.Start(bcfg); err != nil {
			return nil, err
		}
		brokerURL, user, pass = "tcp://"+s.broker.Addr(), provisioning.ServerUsername, secretfile.Text(mqttSecret)
	}
	if cfg.MQTTDynsec != nil {
		if err := s.startDynsec(ctx, brokerURL, boxKey, secretfile.Text(mqttSecret)); err != nil {
			return nil, err
		}
	}
	if cfg.MQTTHook {
		tok, err := secretfile.LoadOrCreate(path(MQTTHookTokenFile), 32)
		if err != nil {
			return nil, fmt.Errorf("mqtt hook token: %w", err)
		}
		auth := broker.NewAuth(cameraKeys{st}, provisioning.ServerUsername, provisioning.ServerClientID,
			[]byte(secretfile.Text(mqttSecret)), cfg.Now, cfg.Log.With("component", "mqtt-hook"))
		auth.AcceptDerivedPasswords(boxKey)
		broker.NewHTTPHook(auth, secretfile.Text(tok), cfg.Log.With("component", "mqtt-hook")).Register(s.mux)
	}
	if cfg.MQTTDynsec != nil || cfg.MQTTHook {
		user, pass = provisioning.ServerUsername, secretfile.Text(mqttSecret)
	}

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	adminAPI := provisioning.NewAdminAPI(st, s.Provisioning, s.AdminToken)
	adminAPI.Register(s.mux)
	provisioning.NewPSKC(st, s.Provisioning, cfg.Log.With("component", "pskc")).Register(s.mux, adminAPI.Auth)
	vcfg := signin.DefaultConfig()
	if cfg.SignIn != nil {
		vcfg = *cfg.SignIn
	}
	signinLog := cfg.Log.With("component", "signin")
	if s.SignIn, err = signin.NewService(st, vcfg, cfg.Now, signinLog); err != nil {
		return nil, err
	}
	adminAPI.SetPasswordHasher(s.SignIn.HashPassword)
	s.Rollover = rollover.New(st, s.Provisioning, cfg.Now, cfg.Log.With("component", "rollover"))
	s.Rollover.Tick = cfg.RolloverTick
	s.Rollover.RegisterAdmin(s.mux, adminAPI.Auth, st, cfg.Log.With("component", "rollover"))
	src := metrics.Sources{CameraStates: st.CameraStates, Online: s.Provisioning.Online, AuditFailures: st.AuditFailures, Log: cfg.Log,
		LostCameras: st.LostCount}
	src.Rotation = func() metrics.RotationStats {
		l := s.Rollover.Last()
		return metrics.RotationStats{On: !l.Policy.Off() && l.Error == "", Due: l.Due, Overdue: l.Overdue, Started: s.Rollover.Started()}
	}
	if cfg.AuditSyslog != nil {
		if err := s.startAuditSyslog(*cfg.AuditSyslog); err != nil {
			return nil, err
		}
		src.AuditForward = s.auditForwardState
	}
	if s.broker != nil {
		src.Broker = s.broker.Stats
	}
	src.Clocks, src.ClockReports = st.CameraClocks, func() map[string]uint64 {
		n := s.Provisioning.ClockReports()
		return map[string]uint64{"recorded": n.Recorded, "replayed": n.Replayed, "unchallenged": n.Unchallenged, "late": n.Late,
			"forged": n.Forged, "malformed": n.Malformed}
	}
	s.Metrics = metrics.New(src)
	s.SignIn.SetObserver(s.Metrics)
	s.Provisioning.SetLostObserver(s.Metrics)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	s.SignIn.SetSender(senders{cfg.Notify.router(st)})
	jsonAPI := api.New(s.SignIn, signinLog)
	jsonAPI.Register(s.mux)
	jsonAPI.RegisterAdmin(s.mux, adminAPI.Auth)
	// Every node's RADIUS server re-reads its client list when one node's
	// admin API changes it.
	st.Watch(storage.TopicRadiusClients, func() {
		if r := s.radius.Load(); r != nil {
			r.InvalidateClients()
		}
	})
	radiusLog := cfg.Log.With("component", "radius")
	radius.RegisterAdminAPI(s.mux, adminAPI.Auth, st, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Announce(ctx, storage.TopicRadiusClients); err != nil {
			radiusLog.Error("tell the other nodes of the RADIUS client change (they see it within their cache time)", "err", err)
		}
	}, radiusLog)
	pages, err := web.New(s.SignIn, signinLog)
	if err != nil {
		return nil, err
	}
	pages.SecureCookies = cfg.SecureCookies
	pages.OrgName, pages.Now = cfg.OrgName, cfg.Now
	pages.Fleet, pages.Audit = provisioning.NewFleet(st, s.Provisioning), st
	pages.Clocks = st
	pages.Rotation = func(ctx context.Context) (rollover.Status, error) { return s.Rollover.Status(ctx) }
	if cfg.Notify.DevOutbox {
		pages.Outbox = func(ctx context.Context) ([]model.OutboxMessage, error) { return st.Outbox(ctx, 50) }
		s.mux.Handle("GET /api/v1/admin/outbox", adminAPI.Auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			msgs, err := st.Outbox(r.Context(), 50)
			if err != nil {
				httpx.WriteError(w, http.StatusInternalServerError, "internal error")
				return
			}
			httpx.WriteJSON(w, http.StatusOK, msgs)
		})))
	}
	s.mux.Handle("GET "+provisioning.ServerKeyPath, adminAPI.Auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := s.Provisioning.ServerKey()
		httpx.WriteJSON(w, http.StatusOK, provisioning.ServerKeyResponse{ServerKey: k[:]})
	})))
	(&oidc.Admin{St: st, Log: cfg.Log.With("component", "oidc")}).Register(s.mux, adminAPI.Auth)
	if cfg.OIDCIssuer != "" {
		var ck [32]byte
		copy(ck[:], key.MAC("oidc-crypto-key", nil))
		s.OIDC, err = oidc.New(ctx, oidc.Config{Issuer: cfg.OIDCIssuer, CryptoKey: ck, Now: cfg.Now, Log: cfg.Log.With("component", "oidc")}, st, s.SignIn)
		if err != nil {
			return nil, err
		}
		s.OIDC.Register(s.mux)
		pages.Handoff = s.OIDC
	}
	pages.Register(s.mux)

	// With the hook, HTTP serves first: the broker calls it to admit the
	// server's own client. Otherwise the link is up before the APIs serve.
	if cfg.MQTTHook {
		if err := s.serveHTTP(); err != nil {
			return nil, err
		}
	}
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	onMsg := func(topic string, payload []byte) {
		s.Provisioning.HandleMessage(context.Background(), topic, payload)
	}
	lcfg := provisioning.LinkConfig{Broker: brokerURL, Log: cfg.Log}
	if cfg.MQTTExternal != "" {
		// Several nodes may share the broker: a client ID each, and the
		// cameras' acks and status shared out, each to one node.
		lcfg.ClientID = provisioning.ServerClientID + "-" + nodeID(cfg.NodeID)
		lcfg.SharedGroup = dynsec.SharedGroup // what the broker's ACL allows
	}
	link, err := provisioning.DialServer(dialCtx, lcfg, user, pass, onMsg)
	if err != nil {
		return nil, err
	}
	s.link.Store(link)
	s.Provisioning.SetPublisher(link)
	// Commands whose publish failed while the link was down go out again.
	link.OnReconnect(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Provisioning.ResendAll(ctx); err != nil {
			cfg.Log.Warn("resend pending commands after reconnect", "err", err)
		}
	})
	if err := s.Provisioning.ResendAll(ctx); err != nil {
		cfg.Log.Warn("resend pending commands", "err", err)
	}
	if !cfg.MQTTHook {
		if err := s.serveHTTP(); err != nil {
			return nil, err
		}
	}

	s.stop = make(chan struct{})
	resendEvery := cmp.Or(cfg.ResendEvery, DefaultResendEvery)
	s.every(resendEvery/2, resendEvery, func(ctx context.Context) {
		if n, err := s.Provisioning.ResendDue(ctx, resendEvery, resendLimit); err != nil {
			cfg.Log.Warn("resend pending commands", "sent", n, "err", err)
		} else if n > 0 {
			cfg.Log.Info("resent pending commands", "sent", n)
		}
	})
	if cfg.RolloverTick >= 0 {
		tick := cmp.Or(cfg.RolloverTick, rollover.DefaultTick)
		s.every(tick, tick, func(ctx context.Context) {
			if _, err := s.Rollover.Step(ctx); err != nil {
				cfg.Log.Warn("seed rollover step", "err", err)
			}
		})
	}
	// Bounded, so a wedged disk cannot hold up Close.
	s.every(janitorInterval, time.Minute, func(ctx context.Context) { s.sweep(ctx, vcfg.Limits) })
	if cfg.RADIUS != nil {
		if err := s.StartRADIUS(*cfg.RADIUS); err != nil {
			return nil, err
		}
	}
	s.ready.Store(true)
	ok = true
	return s, nil
}

// startAuditSyslog starts forwarding the audit log as fc says, in the
// background until Close.
func (s *Server) startAuditSyslog(fc auditsyslog.Config) error {
	if fc.CursorPath == "" {
		fc.CursorPath = filepath.Join(s.cfg.DataDir, auditsyslog.CursorFile)
	}
	if fc.Hostname == "" {
		fc.Hostname = nodeID(s.cfg.NodeID)
	}
	fc.Log, fc.Now = s.cfg.Log, s.cfg.Now
	fwd, err := auditsyslog.New(s.Store, fc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.AuditSyslog, s.stopFwd, s.fwdDone = fwd, cancel, make(chan struct{})
	go func() {
		defer close(s.fwdDone)
		fwd.Run(ctx)
	}()
	s.cfg.Log.Info("audit log forwarded to syslog", "target", fwd.Target().String(), "cursor", fc.CursorPath)
	return nil
}

// auditForwardState is the forwarder's state for /metrics.
func (s *Server) auditForwardState(ctx context.Context) (metrics.AuditForward, error) {
	st := s.AuditSyslog.Stats()
	out := metrics.AuditForward{Forwarded: st.Forwarded, Failures: st.Failures, Up: st.Up, Rewinds: st.Rewinds}
	rows, behind, err := s.AuditSyslog.Lag(ctx)
	out.LagRows, out.LagSeconds = rows, behind.Seconds()
	return out, err
}

// StartRADIUS serves RADIUS on rc.Addr over the sign-in service, for the
// clients registered in the database. An address in use is an error that
// errors.Is matches with syscall.EADDRINUSE.
func (s *Server) StartRADIUS(rc RADIUSConfig) error {
	r := radius.New(s.SignIn, s.Store, radius.Config{AllowLegacy: rc.AllowLegacy, Separator: rc.Separator,
		Now: s.cfg.Now, Log: s.cfg.Log.With("component", "radius"), Counter: s.Metrics})
	if !s.radius.CompareAndSwap(nil, r) {
		return errors.New("radius: already serving")
	}
	if err := r.Listen(rc.Addr); err != nil {
		s.radius.Store(nil)
		return err
	}
	s.cfg.Log.Info("radius serving", "addr", r.Addr(), "allow_legacy", rc.AllowLegacy, "separator", rc.Separator)
	return nil
}

// DB names the server's database, without any password.
func (s *Server) DB() string { return s.db.String() }

// RADIUSAddr is the RADIUS server's bound UDP address ("" when off).
func (s *Server) RADIUSAddr() string {
	if r := s.radius.Load(); r != nil {
		return r.Addr()
	}
	return ""
}

// readyz answers 200 when the server takes traffic: started, database
// answering and taking writes, MQTT link connected, embedded broker able
// to accept; 503 with the reasons otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if !s.ready.Load() {
		problems = append(problems, "starting")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// The reasons are short and fixed: readyz answers anybody, and a
	// database error names hosts, users and databases. The log has it.
	if err := s.Store.Ping(ctx); err != nil {
		s.cfg.Log.Warn("readyz: database not answering", "err", err)
		problems = append(problems, "database: not answering")
	} else if err := s.probeWrite(); err != nil {
		s.cfg.Log.Warn("readyz: database refuses writes", "err", err)
		problems = append(problems, "database writes: "+unavailableReason(err))
	}
	if l := s.link.Load(); l == nil || !l.Connected() {
		problems = append(problems, "mqtt: not connected")
	}
	if s.broker != nil {
		if err := s.broker.AcceptError(); err != nil {
			problems = append(problems, "mqtt broker: cannot accept connections: "+err.Error())
		}
	}
	if len(problems) > 0 {
		http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// unavailableReason is the client-safe reason of a storage failure: the
// UnavailableError's own ("disk full", "read-only", …) or "failing".
func unavailableReason(err error) string {
	var u *storage.UnavailableError
	if errors.As(err, &u) {
		return u.Reason
	}
	return "failing"
}

func (s *Server) metricsHandler() http.Handler {
	h := s.Metrics.Handler()
	if s.cfg.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Mux is the HTTP mux, for packages that add routes before serving traffic.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// MQTTAddr is the embedded broker's bound address ("" with an external broker).
func (s *Server) MQTTAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr()
}

// MQTTClients is the number of clients connected to the embedded broker.
func (s *Server) MQTTClients() int64 {
	if s.broker == nil {
		return 0
	}
	return s.broker.Clients()
}

// MQTTTLSAddr is the embedded broker's TLS address, or "".
func (s *Server) MQTTTLSAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.TLSAddr()
}

// Close stops everything; later calls do nothing.
func (s *Server) Close() error {
	s.closed.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.ready.Store(false)
	if r := s.radius.Load(); r != nil {
		r.Close()
	}
	if s.stop != nil {
		close(s.stop)
		s.janitor.Wait()
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.http.Shutdown(ctx)
		cancel()
	}
	if l := s.link.Load(); l != nil {
		l.Close()
	}
	if s.stopSync != nil {
		s.syncStart.Lock()
		s.stopSync()
		s.syncStart.Unlock()
		s.syncing.Wait()
	}
	if s.dynsec != nil {
		s.dynsec.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.Provisioning != nil {
		s.Provisioning.Close() // the last presence events, before the store goes
	}
	if s.stopFwd != nil {
		s.stopFwd() // the forwarder checkpoints what it sent, briefly
		<-s.fwdDone
	}
	return s.Store.Close()
}
