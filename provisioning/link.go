package provisioning

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/camotp/camotp/device"
)

// LinkConfig is how an MQTT link connects.
type LinkConfig struct {
	// Broker is the broker URL: tcp://HOST:PORT or ssl://HOST:PORT.
	Broker string
	// TLS is used for ssl:// brokers (nil: system roots).
	TLS *tls.Config
	// Log receives the link's events (nil: slog.Default()).
	Log *slog.Logger
	// Clock dates the camera's broker credentials and times its reconnect
	// schedule (nil: the system clock).
	Clock device.Clock
	// Jitter returns a uniform integer in [0, n): the randomness of the
	// reconnect schedule (nil: math/rand/v2).
	Jitter func(n int64) int64

	// ClientID is the server link's MQTT client ID ("": ServerClientID).
	// Nodes sharing a broker need one each: a broker drops the older of
	// two connections with one ID.
	ClientID string
	// SharedGroup, for the server link of several nodes on one broker,
	// subscribes to the cameras' acks and status as the MQTT shared
	// subscription $share/SharedGroup/…, so each message reaches one node.
	SharedGroup string
	// Credential is the MQTT password a camera presents: CredentialToken
	// ("" too) or CredentialDerived. The server's link ignores it.
	Credential string
	// ClockReportEvery is how often a camera asks the server for a clock
	// challenge, which it answers with its clock (signed, on its status
	// topic), besides once after each connect (its "online" asks): 0 is
	// DefaultClockReportEvery, negative never, and challenges go
	// unanswered (a camera without clock telemetry, as before it). The
	// server's link ignores it.
	ClockReportEvery time.Duration
	// ReportClock is the clock a camera's reports give: the one its
	// screen's codes follow (nil: Clock).
	ReportClock device.Clock
}

// Camera broker credentials (LinkConfig.Credential).
const (
	// CredentialToken is a token signed by the camera's Ed25519 key, fresh
	// on every connect: what camotp's embedded broker and its HTTP hook
	// (EMQX) check.
	CredentialToken = "token"
	// CredentialDerived is the password derived from the camera's X25519
	// key and the pinned server key (camkey.BrokerPassword): what a broker
	// with a static password per client checks (mosquitto's dynamic
	// security plugin, managed by camotp).
	CredentialDerived = "derived"
)

// ErrNoServerKey is returned when a camera should present a derived broker
// password but has no server key pinned yet.
var ErrNoServerKey = errors.New("camera has no server key pinned: enrol it with the server's key (camotp camera init --server-key)")

// credentials returns the function that gives the camera's MQTT username
// and password on each connect.
func (a *Agent) credentials(id device.Identity) (func() (string, string), error) {
	switch a.cfg.Credential {
	case "", CredentialToken:
		return func() (string, string) { return id.Serial, id.Key.Token(id.Serial, a.clock.Now()) }, nil
	case CredentialDerived:
		pin := a.st.PinnedServerKey()
		if len(pin) != 32 {
			return nil, ErrNoServerKey
		}
		pw, err := id.Key.BrokerPassword(id.Serial, [32]byte(pin))
		if err != nil {
			return nil, err
		}
		return func() (string, string) { return id.Serial, pw }, nil
	}
	return nil, fmt.Errorf("unknown broker credential %q (want %s or %s)", a.cfg.Credential, CredentialToken, CredentialDerived)
}

// Link states an Agent reports.
const (
	LinkConnected  = "connected"
	LinkConnecting = "connecting"
	LinkOffline    = "offline"
)

// LinkEventKind names what happened to an agent's link.
type LinkEventKind string

// Link events.
const (
	// EventAttempt: a connection attempt starts.
	EventAttempt LinkEventKind = "attempt"
	// EventUp: the broker accepted the connection.
	EventUp LinkEventKind = "up"
	// EventFailed: the attempt failed (Err says why); the next waits Wait.
	EventFailed LinkEventKind = "failed"
	// EventLost: an established connection was lost; the next attempt waits Wait.
	EventLost LinkEventKind = "lost"
)

// LinkEvent is one step of an agent's link, for observers (benchmarks,
// diagnostics).
type LinkEvent struct {
	Kind LinkEventKind
	At   time.Time
	Err  error
	Wait time.Duration
}

// How long the agent waits for the broker's PUBACK, and for its goodbye.
const (
	publishTimeout = 30 * time.Second
	goodbyeTimeout = 2 * time.Second
)

var errConnectionLost = errors.New("connection lost before the broker acknowledged")

// Agent is the camera side of provisioning: an MQTT client under the
// camera's own identity that applies commands and answers with proofs. It
// reports its link state to the camera's Wi-Fi/Bluetooth screen.
//
// The agent owns its reconnect loop: each connection is a fresh paho client
// (persistent session, no paho store, no paho auto-reconnect), and between
// attempts it waits per Backoff, so a refused or cut-off fleet retries
// slowly and out of step. Acks wait in the agent's outbox until the broker
// acknowledges them and are sent again on the next connection. A clean Stop
// says "offline" on the status topic before disconnecting; the MQTT will
// says it when the link dies.
type Agent struct {
	st     CameraState
	cfg    LinkConfig
	clock  device.Clock
	status atomic.Value // string
	// Applied, when set before Start, is called after each ack is
	// acknowledged by the broker.
	Applied func(Ack)
	// Observe, when set before Start, is told every link event.
	Observe func(LinkEvent)

	// dial, when set, opens the network connection (tests cut it).
	dial func(addr string) (net.Conn, error)

	// seqFallback numbers the clock reports of a camera state that keeps
	// no counter (ReportCounter): from the start time in ms, rising.
	seqFallback atomic.Uint64

	mu     sync.Mutex
	conn   *agentConn // the connection that is up, or nil
	outbox map[string]pendingAck
	cancel context.CancelFunc
	done   chan struct{}
}

// pendingAck is an ack the broker has not acknowledged yet.
type pendingAck struct {
	ack  Ack
	data []byte
}

// agentConn is one connection of the agent: one paho client.
type agentConn struct {
	client mqtt.Client
	lost   chan struct{} // closed when the connection is lost
	once   sync.Once
	err    error
}

func (c *agentConn) markLost(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.lost)
	})
}

// NewAgent returns an agent for the camera.
func NewAgent(st CameraState, cfg LinkConfig) *Agent {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	clock := cfg.Clock
	if clock == nil {
		clock = device.SystemClock{}
	}
	a := &Agent{st: st, cfg: cfg, clock: clock, outbox: map[string]pendingAck{}}
	a.seqFallback.Store(uint64(time.Now().UnixMilli()))
	a.status.Store(LinkOffline)
	return a
}

// Status reports the link: connected, connecting or offline.
func (a *Agent) Status() string { return a.status.Load().(string) }

// Start connects in the background, reconnecting until Stop, with a
// persistent session, so commands published while the camera was away
// arrive when it comes back. Start after Stop does nothing.
func (a *Agent) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	a.status.Store(LinkConnecting)
	go a.run(ctx)
}

// Stop says "offline" and disconnects cleanly when connected, stops
// reconnecting and waits until the link is down.
func (a *Agent) Stop() {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	a.status.Store(LinkOffline)
}

func (a *Agent) observe(e LinkEvent) {
	if a.Observe != nil {
		a.Observe(e)
	}
}

// run is the reconnect loop.
func (a *Agent) run(ctx context.Context) {
	defer close(a.done)
	bo := NewBackoff(a.cfg.Jitter)
	serial := a.st.Identity().Serial
	for {
		a.status.Store(LinkConnecting)
		wasUp, err := a.session(ctx, bo)
		if ctx.Err() != nil {
			return
		}
		ev := LinkEvent{Kind: EventFailed, At: a.clock.Now(), Err: err}
		if wasUp {
			ev.Kind = EventLost
		}
		ev.Wait = bo.Next(ev.At)
		a.observe(ev)
		a.cfg.Log.Debug("mqtt link down; reconnecting", "serial", serial, "event", ev.Kind, "err", err, "wait", ev.Wait)
		t := time.NewTimer(ev.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session makes one connection and serves it until it is lost or ctx ends.
// wasUp tells whether the broker accepted it.
func (a *Agent) session(ctx context.Context, bo *Backoff) (wasUp bool, err error) {
	id := a.st.Identity()
	serial := id.Serial
	c := &agentConn{lost: make(chan struct{})}
	creds, err := a.credentials(id)
	if err != nil {
		return false, err
	}
	opts := mqtt.NewClientOptions().AddBroker(a.cfg.Broker).SetClientID(serial).
		SetCleanSession(false).SetOrderMatters(false).
		SetAutoReconnect(false).SetConnectRetry(false).SetStore(noStore{}).
		SetKeepAlive(30*time.Second).SetConnectTimeout(10*time.Second).
		SetCredentialsProvider(creds).
		SetBinaryWill(statusTopic(serial), []byte(StatusOffline), 1, false).
		// Commands queued for the session may arrive before Subscribe runs.
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { a.onMessage(m.Topic(), m.Payload()) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { c.markLost(err) })
	if a.cfg.TLS != nil {
		opts.SetTLSConfig(a.cfg.TLS)
	}
	if a.dial != nil {
		opts.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) { return a.dial(u.Host) })
	}
	c.client = mqtt.NewClient(opts)
	a.observe(LinkEvent{Kind: EventAttempt, At: a.clock.Now()})
	tok := c.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go c.client.Disconnect(0) // returns once the attempt ends
		return false, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return false, fmt.Errorf("connect to %s: %w", a.cfg.Broker, err)
	}
	now := a.clock.Now()
	bo.Connected(now)
	a.observe(LinkEvent{Kind: EventUp, At: now})
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
	a.status.Store(LinkConnected)
	// Packets go out in order: the subscription is in place before the
	// server hears "online" and resends what is pending.
	c.client.Subscribe(provTopic(serial), 1, nil)
	go a.announce(ctx, c)
	a.flush(c)

	select {
	case <-c.lost:
		err = c.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.mu.Lock()
	a.conn = nil
	a.mu.Unlock()
	if ctx.Err() != nil {
		a.goodbye(c)
	}
	return true, err
}

// goodbye tells the broker the camera goes offline on purpose (a clean
// DISCONNECT discards the will, so external brokers would not say it) and
// disconnects.
func (a *Agent) goodbye(c *agentConn) {
	t := c.client.Publish(statusTopic(a.st.Identity().Serial), 1, false, []byte(StatusOffline))
	timer := time.NewTimer(goodbyeTimeout)
	defer timer.Stop()
	select {
	case <-t.Done():
	case <-c.lost:
	case <-timer.C:
	}
	c.client.Disconnect(250)
}

// send publishes at QoS 1 on connection c and waits for the PUBACK.
func (a *Agent) send(c *agentConn, topic string, payload []byte) error {
	t := c.client.Publish(topic, 1, false, payload)
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-c.lost:
		return errConnectionLost
	case <-timer.C:
		return errors.New("no PUBACK within " + publishTimeout.String())
	}
}

// flush sends every ack in the outbox on c.
func (a *Agent) flush(c *agentConn) {
	a.mu.Lock()
	todo := make(map[string]pendingAck, len(a.outbox))
	for k, p := range a.outbox {
		todo[k] = p
	}
	a.mu.Unlock()
	for k, p := range todo {
		go a.deliver(c, k, p)
	}
}

// deliver sends one ack and drops it from the outbox once acknowledged.
func (a *Agent) deliver(c *agentConn, key string, p pendingAck) {
	serial := p.ack.Serial
	if err := a.send(c, ackTopic(serial), p.data); err != nil {
		a.cfg.Log.Warn("ack not delivered; sent again on the next connection", "serial", serial, "err", err)
		return
	}
	a.mu.Lock()
	cur, ok := a.outbox[key]
	ok = ok && bytes.Equal(cur.data, p.data)
	if ok {
		delete(a.outbox, key)
	}
	a.mu.Unlock()
	if !ok {
		return // delivered by another connection first, or replaced by a newer ack (reported when that one is delivered)
	}
	a.cfg.Log.Info("provisioning command applied", "serial", serial, "op", p.ack.Op, "version", p.ack.Version, "result", p.ack.Result)
	if a.Applied != nil {
		a.Applied(p.ack)
	}
}

func (a *Agent) onMessage(topic string, payload []byte) {
	serial := a.st.Identity().Serial
	if topic != provTopic(serial) {
		a.cfg.Log.Warn("message on unexpected topic dropped", "topic", topic)
		return
	}
	if isClockChallenge(payload) {
		a.onClockChallenge(payload)
		return
	}
	ack, err := Apply(a.st, payload)
	if err != nil {
		a.cfg.Log.Warn("provisioning command dropped", "serial", serial, "err", err)
		return
	}
	data, err := json.Marshal(ack)
	if err != nil {
		a.cfg.Log.Error("encode ack", "serial", serial, "err", err)
		return
	}
	key := fmt.Sprintf("%s/%d", ack.Op, ack.Version)
	p := pendingAck{ack: ack, data: data}
	a.mu.Lock()
	a.outbox[key] = p
	c := a.conn
	a.mu.Unlock()
	if c != nil {
		a.deliver(c, key, p)
	}
}
