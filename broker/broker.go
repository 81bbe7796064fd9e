package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"

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
}

// Broker is the running embedded broker.
type Broker struct {
	srv     *mqtt.Server
	addr    string
	tlsAddr string
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
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: slog.New(RedactPackets(log.Handler()))})
	if err := srv.AddHook(cfg.Auth, nil); err != nil {
		return nil, fmt.Errorf("broker auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("mqtt listen %s: %w", cfg.Addr, err)
	}
	b := &Broker{srv: srv, addr: tcp.Address()}
	if cfg.TLSAddr != "" {
		tl := listeners.NewTCP(listeners.Config{ID: "tls", Address: cfg.TLSAddr, TLSConfig: cfg.TLS})
		if err := srv.AddListener(tl); err != nil {
			srv.Close()
			return nil, fmt.Errorf("mqtt tls listen %s: %w", cfg.TLSAddr, err)
		}
		b.tlsAddr = tl.Address()
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return b, nil
}

// Addr is the bound plain TCP address.
func (b *Broker) Addr() string { return b.addr }

// TLSAddr is the bound TLS address, or "".
func (b *Broker) TLSAddr() string { return b.tlsAddr }

// Clients is the number of connected clients.
func (b *Broker) Clients() int64 { return atomic.LoadInt64(&b.srv.Info.ClientsConnected) }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

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
}

// Stats returns a snapshot of the broker's counters.
func (b *Broker) Stats() Stats {
	i := b.srv.Info.Clone()
	return Stats{
		ClientsConnected: i.ClientsConnected,
		BytesReceived:    i.BytesReceived,
		BytesSent:        i.BytesSent,
		MessagesReceived: i.MessagesReceived,
		MessagesSent:     i.MessagesSent,
		MessagesDropped:  i.MessagesDropped,
		PacketsReceived:  i.PacketsReceived,
		PacketsSent:      i.PacketsSent,
		InflightDropped:  i.InflightDropped,
		Subscriptions:    i.Subscriptions,
		Retained:         i.Retained,
		Inflight:         i.Inflight,
	}
}
