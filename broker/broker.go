package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// MaxPacketSize bounds every MQTT packet the broker accepts.
const MaxPacketSize = 16 * 1024

// Config is the embedded broker's setup.
type Config struct {
	// Addr is the plain TCP listen address (e.g. 127.0.0.1:1883; port 0 picks one).
	Addr string
	// TLSAddr, when set, adds a TLS listener with TLS.
	TLSAddr string
	TLS     *tls.Config
	Auth    *Auth
	Log     *slog.Logger

	// MaxConns caps the open connections over all listeners, whether they
	// have sent CONNECT or not; one more is closed at once (0: no cap).
	MaxConns int
	// MaxConnsPerIP caps the open connections from one source address
	// (0: no cap).
	MaxConnsPerIP int
	// ConnectTimeout is how long a new connection may take to send CONNECT
	// (and finish its TLS handshake) before it is closed
	// (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// AcceptErrorWindow is how long AcceptError keeps reporting a failed
	// accept (0: DefaultAcceptErrorWindow).
	AcceptErrorWindow time.Duration
	// Presence, when set, is called with a camera's serial when its session
	// is established (online) and when its connection ends, cleanly or not
	// (offline). The server's own client is not reported. Calls are made in
	// order, one at a time, from the broker's connection goroutines: keep
	// them short.
	Presence func(serial string, online bool)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Broker is the running embedded broker.
type Broker struct {
	srv     *mqtt.Server
	guard   *connGuard
	addr    string
	tlsAddr string

	closeOnce sync.Once
	closeErr  error
}

// Start starts the broker; its listeners are bound when Start returns.
func Start(cfg Config) (*Broker, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = MaxPacketSize
	caps.MaximumClientWritesPending = 1024
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: slog.New(nameUnnamed(RedactPackets(log.Handler())))})
	if err := srv.AddHook(cfg.Auth, nil); err != nil {
		return nil, fmt.Errorf("broker auth hook: %w", err)
	}
	if cfg.Presence != nil {
		if err := srv.AddHook(newPresenceHook(cfg.Auth.isServer, cfg.Presence), nil); err != nil {
			return nil, fmt.Errorf("broker presence hook: %w", err)
		}
	}
	b := &Broker{srv: srv, guard: newConnGuard(cfg, log)}
	fail := func(err error) (*Broker, error) {
		b.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("mqtt listen %s: %w", cfg.Addr, err))
	}
	b.addr = ln.Addr().String()
	if err := srv.AddListener(listeners.NewNet("tcp", b.guard.listen("tcp", ln))); err != nil {
		ln.Close()
		return fail(fmt.Errorf("mqtt listener %s: %w", b.addr, err))
	}
	if cfg.TLSAddr != "" {
		ln, err := net.Listen("tcp", cfg.TLSAddr)
		if err != nil {
			return fail(fmt.Errorf("mqtt tls listen %s: %w", cfg.TLSAddr, err))
		}
		b.tlsAddr = ln.Addr().String()
		// The guard sees the raw TCP connection: caps and the CONNECT
		// deadline apply before and during the TLS handshake.
		tl := tls.NewListener(b.guard.listen("tls", ln), cfg.TLS)
		if err := srv.AddListener(listeners.NewNet("tls", tl)); err != nil {
			tl.Close()
			return fail(fmt.Errorf("mqtt tls listener %s: %w", b.tlsAddr, err))
		}
	}
	if err := srv.Serve(); err != nil {
		return fail(fmt.Errorf("start broker: %w", err))
	}
	return b, nil
}

// Addr is the bound plain TCP address.
func (b *Broker) Addr() string { return b.addr }

// TLSAddr is the bound TLS address, or "".
func (b *Broker) TLSAddr() string { return b.tlsAddr }

// Clients is the number of connected clients.
func (b *Broker) Clients() int64 { return atomic.LoadInt64(&b.srv.Info.ClientsConnected) }

// Close stops the broker and closes every connection, including those
// that never sent CONNECT; later calls do nothing.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.guard.shutdown(5 * time.Second)
		b.closeErr = b.srv.Close()
	})
	return b.closeErr
}

// AcceptError reports why the broker cannot accept new connections now
// (an accept failed within the last AcceptErrorWindow, no file descriptor
// is free, or the broker is closed), or nil when it can. It backs the
// server's readiness probe; the connection caps do not make it fail.
func (b *Broker) AcceptError() error { return b.guard.acceptError() }

// Stats is a snapshot of the broker's counters.
type Stats struct {
	ClientsConnected int64
	BytesReceived    int64
	BytesSent        int64
	MessagesReceived int64
	MessagesSent     int64
	MessagesDropped  int64
	PacketsReceived  int64
	PacketsSent      int64
	InflightDropped  int64
	Subscriptions    int64
	Retained         int64
	Inflight         int64

	// ConnsOpen is the number of open connections, CONNECT sent or not.
	ConnsOpen int64
	// ConnsPeak is the most connections open at once since start.
	ConnsPeak int64
	// ConnsAccepted counts connections admitted under the caps.
	ConnsAccepted int64
	// ConnsRejectedCap and ConnsRejectedPerIP count connections closed at
	// once because the total or the per-address cap was reached.
	ConnsRejectedCap   int64
	ConnsRejectedPerIP int64
	// AcceptErrors counts failed accepts (e.g. EMFILE), each retried.
	AcceptErrors int64
}

// Stats returns a snapshot of the broker's counters.
func (b *Broker) Stats() Stats {
	i := b.srv.Info.Clone()
	g := b.guard
	g.mu.Lock()
	open, peak := len(g.open), g.peak
	g.mu.Unlock()
	return Stats{
		ConnsOpen:          int64(open),
		ConnsPeak:          int64(peak),
		ConnsAccepted:      g.accepted.Load(),
		ConnsRejectedCap:   g.rejectedTotal.Load(),
		ConnsRejectedPerIP: g.rejectedPerIP.Load(),
		AcceptErrors:       g.acceptErrors.Load(),
		ClientsConnected:   i.ClientsConnected,
		BytesReceived:      i.BytesReceived,
		BytesSent:          i.BytesSent,
		MessagesReceived:   i.MessagesReceived,
		MessagesSent:       i.MessagesSent,
		MessagesDropped:    i.MessagesDropped,
		PacketsReceived:    i.PacketsReceived,
		PacketsSent:        i.PacketsSent,
		InflightDropped:    i.InflightDropped,
		Subscriptions:      i.Subscriptions,
		Retained:           i.Retained,
		Inflight:           i.Inflight,
	}
}
