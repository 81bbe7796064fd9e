package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrLinkDown is returned by ServerLink.Publish while the server is not
// connected to the broker; the command stays pending and is published again
// when the link comes back.
var ErrLinkDown = errors.New("MQTT link to the broker is down")

// ServerLink is the server's own MQTT client: it publishes commands and
// receives acks and status for every camera.
//
// It keeps nothing in paho's store (see noStore: paho v1.5.1 races on
// resume otherwise); what is pending lives in the database, and the
// function set with OnReconnect publishes it again after a reconnect.
type ServerLink struct {
	client      mqtt.Client
	topics      map[string]byte // subscriptions, renewed on every connection
	log         *slog.Logger
	reconnected atomic.Pointer[func()]

	mu         sync.Mutex
	lost       chan struct{} // closed when the current connection is lost
	connected  bool          // the first connection came up
	subscribed chan error    // the first connection's subscription answer
}

// Server MQTT identity on the embedded broker.
const (
	ServerClientID = "camotp-server"
	ServerUsername = "camotp-server"
)

// DialServer connects the server's client (a persistent session when it is
// the only node, so acks sent while it was down are delivered when it
// returns; see LinkConfig.SharedGroup for several) and subscribes to
// every camera's ack and status topics; onMessage receives them. It waits
// until connected and subscribed (an ack sent before the subscription
// would be lost), or until ctx ends.
func DialServer(ctx context.Context, cfg LinkConfig, username, password string, onMessage func(topic string, payload []byte)) (*ServerLink, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	l := &ServerLink{lost: make(chan struct{}), topics: map[string]byte{}, subscribed: make(chan error, 1), log: log}
	for _, t := range []string{"cams/+/ack", "cams/+/status"} {
		if cfg.SharedGroup != "" {
			t = "$share/" + cfg.SharedGroup + "/" + t
		}
		l.topics[t] = 1
	}
	clientID := cfg.ClientID
	if clientID == "" {
		clientID = ServerClientID
	}
	// One node alone keeps a persistent session, so acks sent while it is
	// down wait for it. Nodes sharing the acks take a clean one: a dead
	// node's persistent session would stay in the share group and keep
	// its share of the acks queued until it returns (the sweep's resends
	// recover what a clean session drops).
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID(clientID).
		SetCleanSession(cfg.SharedGroup != "").SetOrderMatters(false).SetStore(noStore{}).
		SetAutoReconnect(true).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { onMessage(m.Topic(), m.Payload()) }).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			// Said, not silent: a link that keeps dropping (a client with
			// the same ID elsewhere, a broker refusing us) shows here.
			log.Warn("MQTT link to the broker lost; reconnecting", "client_id", clientID, "err", err)
			l.onLost()
		})
	if username != "" {
		opts.SetUsername(username).SetPassword(password)
	}
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	l.client = mqtt.NewClient(opts)
	t := l.client.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("connect to MQTT broker %s: %w", cfg.Broker, err)
		}
	case <-ctx.Done():
		go l.client.Disconnect(0)
		return nil, fmt.Errorf("connect to MQTT broker %s: %w", cfg.Broker, ctx.Err())
	}
	select {
	case err := <-l.subscribed:
		if err != nil {
			go l.client.Disconnect(0)
			return nil, fmt.Errorf("subscribe on MQTT broker %s: %w", cfg.Broker, err)
		}
	case <-ctx.Done():
		go l.client.Disconnect(0)
		return nil, fmt.Errorf("subscribe on MQTT broker %s: %w", cfg.Broker, ctx.Err())
	}
	return l, nil
}

// OnReconnect sets f to run (in its own goroutine) each time the link comes
// back after a loss, once its subscriptions are renewed.
func (l *ServerLink) OnReconnect(f func()) { l.reconnected.Store(&f) }

func (l *ServerLink) onConnect(c mqtt.Client) {
	l.mu.Lock()
	// Each connection has its own loss signal: publishes still waiting on
	// the previous one learn it is gone.
	select {
	case <-l.lost:
	default:
		close(l.lost)
	}
	l.lost = make(chan struct{})
	again := l.connected
	l.connected = true
	l.mu.Unlock()
	t := c.SubscribeMultiple(l.topics, nil)
	if !again {
		err := errors.New("no SUBACK within 10s")
		if t.WaitTimeout(10 * time.Second) {
			err = subackError(t)
		}
		l.subscribed <- err // buffered, read once by DialServer
		return
	}
	if !t.WaitTimeout(10 * time.Second) {
		l.log.Error("MQTT link back, but no SUBACK within 10s: acks and status may not arrive until the next reconnect")
	} else if err := subackError(t); err != nil {
		l.log.Error("MQTT link back, but its subscriptions were refused: acks and status do not arrive", "err", err)
	}
	if f := l.reconnected.Load(); f != nil {
		(*f)()
	}
}

// subackError tells a refused subscription: paho reports a SUBACK's
// failure codes (0x80 and up) only in its result, not as an error.
func subackError(t mqtt.Token) error {
	if err := t.Error(); err != nil {
		return err
	}
	st, ok := t.(*mqtt.SubscribeToken)
	if !ok {
		return nil
	}
	for topic, code := range st.Result() {
		if code >= 0x80 {
			return fmt.Errorf("subscription to %s refused (code %#x): does the broker let the server read cams/+/ack and cams/+/status?", topic, code)
		}
	}
	return nil
}

func (l *ServerLink) onLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// paho runs the reconnect and this handler in separate goroutines: a
	// loss reported after the next connection is up belongs to the old
	// one, which onConnect has signalled already.
	if l.client.IsConnectionOpen() {
		return
	}
	select {
	case <-l.lost:
	default:
		close(l.lost)
	}
}

// Publish sends a QoS 1 message and waits for the broker's PUBACK, the loss
// of the connection or ctx.
func (l *ServerLink) Publish(ctx context.Context, topic string, payload []byte) error {
	if !l.client.IsConnectionOpen() {
		return ErrLinkDown
	}
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	t := l.client.Publish(topic, 1, false, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-lost:
		return fmt.Errorf("publish on %s: %w", topic, errConnectionLost)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the link is up.
func (l *ServerLink) Connected() bool { return l.client.IsConnectionOpen() }

// Close disconnects.
func (l *ServerLink) Close() { l.client.Disconnect(250) }
