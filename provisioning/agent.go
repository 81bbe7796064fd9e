package provisioning

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/store"
)

// CameraState is what the agent needs of a camera's state directory.
type CameraState interface {
	Identity() device.Identity
	Seed() (device.Seed, error)
	Version() uint64
	StoreSeed(device.Seed) error
	WipeSeed(version uint64) error
	PinnedServerKey() []byte
	PinServerKey([]byte) error
}

// Apply runs one command payload against the camera state and returns the
// ack to publish, or an error when the payload must be dropped unanswered
// (malformed, not for this camera, not sealed to it, or from a server key
// other than the pinned one).
func Apply(st CameraState, payload []byte) (Ack, error) {
	id := st.Identity()
	cmd, err := ParseCommand(payload, id.Serial)
	if err != nil {
		return Ack{}, err
	}
	pin := st.PinnedServerKey()
	if pin != nil && subtle.ConstantTimeCompare(pin, cmd.ServerKey) != 1 {
		return Ack{}, errors.New("command sealed by a server key this camera does not trust")
	}
	in, err := cmd.Open(id.Key)
	if err != nil {
		return Ack{}, err
	}
	if pin == nil {
		if err := st.PinServerKey(cmd.ServerKey); err != nil {
			return Ack{}, err
		}
	}
	ack := Ack{V: ProtocolVersion, Serial: id.Serial, Op: in.Op, Version: in.Version, Result: ResultOK}
	switch in.Op {
	case store.OpProvision, store.OpRotate:
		err = st.StoreSeed(*in.Seed)
		if errors.Is(err, device.ErrStaleVersion) {
			// A resend of what was applied is answered again; an older one is refused.
			cur, cerr := st.Seed()
			if cerr != nil || cur.Version != in.Version || !bytes.Equal(cur.Secret, in.Seed.Secret) {
				ack.Result, ack.Error = ResultStale, fmt.Sprintf("camera is at version %d", st.Version())
				return ack, nil
			}
			err = nil
		}
		if err != nil {
			ack.Result, ack.Error = ResultError, "could not store the seed"
			return ack, nil
		}
		ack.Proof = SeedProof(*in.Seed, id.Serial, in.Version, in.Challenge)
	case store.OpWipe:
		err = st.WipeSeed(in.Version)
		if errors.Is(err, device.ErrStaleVersion) {
			_, serr := st.Seed()
			if st.Version() != in.Version || !errors.Is(serr, device.ErrNoSeed) {
				ack.Result, ack.Error = ResultStale, fmt.Sprintf("camera is at version %d", st.Version())
				return ack, nil
			}
			err = nil
		}
		if err != nil {
			ack.Result, ack.Error = ResultError, "could not erase the seed"
			return ack, nil
		}
		ack.Proof = WipeProof(id.Key, id.Serial, in.Version, in.Challenge)
	}
	return ack, nil
}

// LinkConfig is how an MQTT link connects.
type LinkConfig struct {
	// Broker is the broker URL: tcp://HOST:PORT or ssl://HOST:PORT.
	Broker string
	// TLS is used for ssl:// brokers (nil: system roots).
	TLS *tls.Config
	Log *slog.Logger
}

// Agent is the camera side of provisioning: a paho MQTT client under the
// camera's own identity that applies commands and answers with proofs. It
// reports its link state to the camera's Wi-Fi/Bluetooth screen.
type Agent struct {
	st     CameraState
	cfg    LinkConfig
	client mqtt.Client
	status atomic.Value // string
	// Applied, when set, is called after each ack is published.
	Applied func(Ack)
}

// NewAgent returns an agent for the camera.
func NewAgent(st CameraState, cfg LinkConfig) *Agent {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Agent{st: st, cfg: cfg}
	a.status.Store("offline")
	return a
}

// Status reports the link: connected, connecting or offline.
func (a *Agent) Status() string { return a.status.Load().(string) }

// Start connects in the background (retrying until Stop) with a persistent
// session, so commands published while the camera was away arrive when it
// comes back.
func (a *Agent) Start() {
	id := a.st.Identity()
	serial := id.Serial
	opts := mqtt.NewClientOptions().AddBroker(a.cfg.Broker).SetClientID(serial).
		SetCleanSession(false).SetOrderMatters(false).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10*time.Second).
		SetKeepAlive(30*time.Second).SetConnectTimeout(10*time.Second).
		SetCredentialsProvider(func() (string, string) {
			// A fresh signed token on every (re)connect.
			return serial, id.Key.Token(serial, time.Now())
		}).
		SetBinaryWill(statusTopic(serial), []byte(StatusOffline), 1, false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { a.onMessage(m.Topic(), m.Payload()) }).
		SetOnConnectHandler(func(c mqtt.Client) {
			a.status.Store("connected")
			c.Subscribe(provTopic(serial), 1, nil)
			c.Publish(statusTopic(serial), 1, false, []byte(StatusOnline))
		}).
		SetConnectionLostHandler(func(mqtt.Client, error) { a.status.Store("connecting") }).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { a.status.Store("connecting") })
	if a.cfg.TLS != nil {
		opts.SetTLSConfig(a.cfg.TLS)
	}
	a.status.Store("connecting")
	a.client = mqtt.NewClient(opts)
	a.client.Connect()
}

// Stop disconnects.
func (a *Agent) Stop() {
	if a.client != nil {
		a.client.Disconnect(250)
	}
	a.status.Store("offline")
}

func (a *Agent) onMessage(topic string, payload []byte) {
	serial := a.st.Identity().Serial
	if topic != provTopic(serial) {
		a.cfg.Log.Warn("message on unexpected topic dropped", "topic", topic)
		return
	}
	ack, err := Apply(a.st, payload)
	if err != nil {
		a.cfg.Log.Warn("provisioning command dropped", "serial", serial, "err", err)
		return
	}
	data, err := json.Marshal(ack)
	if err != nil {
		return
	}
	t := a.client.Publish(ackTopic(serial), 1, false, data)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		a.cfg.Log.Warn("ack not delivered; the server will resend", "serial", serial, "err", t.Error())
		return
	}
	a.cfg.Log.Info("provisioning command applied", "serial", serial, "op", ack.Op, "version", ack.Version, "result", ack.Result)
	if a.Applied != nil {
		a.Applied(ack)
	}
}

// ServerLink is the server's own MQTT client: it publishes commands and
// receives acks and status for every camera.
type ServerLink struct {
	client mqtt.Client
}

// Server MQTT identity on the embedded broker.
const (
	ServerClientID = "camotp-server"
	ServerUsername = "camotp-server"
)

// DialServer connects the server's client (persistent session, so acks sent
// while the server was down are delivered when it returns) and subscribes to
// every camera's ack and status topics; onMessage receives them. It waits
// until connected or ctx ends.
func DialServer(ctx context.Context, cfg LinkConfig, username, password string, onMessage func(topic string, payload []byte)) (*ServerLink, error) {
	subscribe := func(c mqtt.Client) {
		c.SubscribeMultiple(map[string]byte{"cams/+/ack": 1, "cams/+/status": 1}, nil)
	}
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID(ServerClientID).
		SetCleanSession(false).SetOrderMatters(false).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { onMessage(m.Topic(), m.Payload()) }).
		SetOnConnectHandler(subscribe)
	if username != "" {
		opts.SetUsername(username).SetPassword(password)
	}
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	client := mqtt.NewClient(opts)
	t := client.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("connect to MQTT broker %s: %w", cfg.Broker, err)
		}
	case <-ctx.Done():
		client.Disconnect(0)
		return nil, fmt.Errorf("connect to MQTT broker %s: %w", cfg.Broker, ctx.Err())
	}
	return &ServerLink{client: client}, nil
}

// Publish sends a QoS 1 message and waits for the broker's PUBACK or ctx.
func (l *ServerLink) Publish(ctx context.Context, topic string, payload []byte) error {
	t := l.client.Publish(topic, 1, false, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the link is up.
func (l *ServerLink) Connected() bool { return l.client.IsConnectionOpen() }

// Close disconnects.
func (l *ServerLink) Close() { l.client.Disconnect(250) }
