// Package dynsec administers mosquitto's dynamic security plugin for
// camotp: it speaks the plugin's JSON control API over MQTT (Client) and
// keeps one broker client and role per registered camera, and the server's
// own client, in step with camotp's registry (Accounts). No ACL file is
// edited by hand; the plugin stores what it is told in its own JSON file.
package dynsec

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Topics of the plugin's control API (mosquitto 2.0).
const (
	ControlTopic  = "$CONTROL/dynamic-security/v1"
	ResponseTopic = ControlTopic + "/response"
)

// DefaultTimeout is how long Do waits for the plugin's answers when the
// Config names no timeout.
const DefaultTimeout = 10 * time.Second

// perCommand is added to Do's timeout for each command it sends: mosquitto
// 2.0 rewrites its whole JSON file after every change, which takes longer
// the more clients it holds (measured: about 30 ms a change at 2,500
// cameras, growing linearly).
const perCommand = 500 * time.Millisecond

// Command is one control command: "command" names it, the other keys are
// its fields (see mosquitto's dynamic security documentation).
type Command map[string]any

// Response is the plugin's answer to one command.
type Response struct {
	Command         string          `json:"command"`
	Error           string          `json:"error,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	CorrelationData string          `json:"correlationData,omitempty"`
}

// Errors a CommandError matches with errors.Is.
var (
	// ErrExists: the client, role or ACL to create is there already.
	ErrExists = errors.New("already exists")
	// ErrNotFound: the client or role named does not exist.
	ErrNotFound = errors.New("not found")
)

// CommandError is a command the plugin refused.
type CommandError struct {
	Command string
	Message string
}

// Error names the command and the plugin's reason.
func (e *CommandError) Error() string {
	return fmt.Sprintf("dynamic security %s: %s", e.Command, e.Message)
}

// Is tells ErrExists and ErrNotFound from the plugin's messages ("Client
// already exists", "Role not found", ...).
func (e *CommandError) Is(target error) bool {
	m := strings.ToLower(e.Message)
	switch target {
	case ErrExists:
		return strings.HasSuffix(m, "already exists")
	case ErrNotFound:
		return strings.HasSuffix(m, "not found")
	}
	return false
}

// Err is the response's error: nil when the command succeeded.
func (r Response) Err() error {
	if r.Error == "" {
		return nil
	}
	return &CommandError{Command: r.Command, Message: r.Error}
}

// Config is how the admin client connects.
type Config struct {
	// Broker is the broker URL: tcp://HOST:PORT or ssl://HOST:PORT.
	Broker string
	// TLS is used for ssl:// brokers (nil: system roots).
	TLS *tls.Config
	// Username and Password are the dynamic-security admin's login (the
	// client 'mosquitto_ctrl dynsec init' created).
	Username, Password string
	// ClientID (default "camotp-dynsec-" and random hex: two camotp servers
	// may share the admin login without kicking each other off).
	ClientID string
	// Timeout bounds each Do (0: DefaultTimeout).
	Timeout time.Duration
	// Log receives the client's events (nil: slog.Default()).
	Log *slog.Logger
}

// Client sends control commands and matches the plugin's answers to them by
// their correlationData. It is safe for concurrent use. It reconnects by
// itself; OnReconnect tells when.
type Client struct {
	cfg     Config
	client  mqtt.Client
	prefix  string
	seq     atomic.Uint64
	ready   chan struct{} // closed once the first subscription is in place
	readyOn sync.Once
	again   atomic.Pointer[func()]

	mu      sync.Mutex
	waiting map[string]chan Response
	up      bool // a connection came up before (the next one is a reconnect)
}

// Dial connects the admin client and subscribes to the plugin's answers;
// it returns once commands can be sent, or when ctx ends.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	var nonce [6]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("dynsec client id: %w", err)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "camotp-dynsec-" + hex.EncodeToString(nonce[:])
	}
	c := &Client{cfg: cfg, prefix: hex.EncodeToString(nonce[:]) + "-", ready: make(chan struct{}), waiting: map[string]chan Response{}}
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).SetOrderMatters(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			cfg.Log.Warn("dynsec admin link lost; reconnecting", "broker", cfg.Broker, "err", err)
		})
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	c.client = mqtt.NewClient(opts)
	t := c.client.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("dynsec admin: connect to %s as %q: %w", cfg.Broker, cfg.Username, err)
		}
	case <-ctx.Done():
		go c.client.Disconnect(0)
		return nil, fmt.Errorf("dynsec admin: connect to %s: %w", cfg.Broker, ctx.Err())
	}
	select {
	case <-c.ready:
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("dynsec admin: subscribe to %s: %w", ResponseTopic, ctx.Err())
	}
}

// OnReconnect sets f to run (in its own goroutine) each time the link comes
// back after a loss, once the answer subscription is renewed.
func (c *Client) OnReconnect(f func()) { c.again.Store(&f) }

func (c *Client) onConnect(cl mqtt.Client) {
	t := cl.Subscribe(ResponseTopic, 1, c.onResponse)
	if !t.WaitTimeout(c.cfg.Timeout) || t.Error() != nil {
		c.cfg.Log.Error("dynsec admin: subscribe to the plugin's answers failed", "topic", ResponseTopic, "err", t.Error())
		return
	}
	c.mu.Lock()
	again := c.up
	c.up = true
	c.mu.Unlock()
	c.readyOn.Do(func() { close(c.ready) })
	if f := c.again.Load(); again && f != nil {
		go (*f)()
	}
}

// onResponse hands each answer to the Do waiting for it; answers to other
// admin clients (they share the response topic) are ignored.
func (c *Client) onResponse(_ mqtt.Client, m mqtt.Message) {
	var msg struct {
		Responses []Response `json:"responses"`
	}
	if err := json.Unmarshal(m.Payload(), &msg); err != nil {
		c.cfg.Log.Warn("dynsec admin: unreadable answer dropped", "bytes", len(m.Payload()), "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range msg.Responses {
		if ch, ok := c.waiting[r.CorrelationData]; ok {
			delete(c.waiting, r.CorrelationData)
			ch <- r // buffered: never blocks
		}
	}
}

// Do sends cmds in one control message and returns the plugin's answers in
// the same order. A refused command is not an error of Do: check each
// Response.Err. Do fails when the message cannot be sent or an answer does
// not come within the timeout (Config.Timeout, plus a little per command).
func (c *Client) Do(ctx context.Context, cmds ...Command) ([]Response, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout+time.Duration(len(cmds))*perCommand)
	defer cancel()
	ids := make([]string, len(cmds))
	chans := make([]chan Response, len(cmds))
	sent := make([]Command, len(cmds))
	c.mu.Lock()
	for i, cmd := range cmds {
		ids[i] = c.prefix + strconv.FormatUint(c.seq.Add(1), 10)
		chans[i] = make(chan Response, 1)
		c.waiting[ids[i]] = chans[i]
		sent[i] = make(Command, len(cmd)+1)
		for k, v := range cmd {
			sent[i][k] = v
		}
		sent[i]["correlationData"] = ids[i]
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for _, id := range ids {
			delete(c.waiting, id)
		}
		c.mu.Unlock()
	}()
	payload, err := json.Marshal(map[string]any{"commands": sent})
	if err != nil {
		return nil, fmt.Errorf("dynsec: encode commands: %w", err)
	}
	t := c.client.Publish(ControlTopic, 1, false, payload)
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("dynsec: send %s: %w", cmds[0]["command"], err)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("dynsec: send %s: %w", cmds[0]["command"], ctx.Err())
	}
	out := make([]Response, len(cmds))
	for i, ch := range chans {
		select {
		case out[i] = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("dynsec: no answer to %s from the dynamic security plugin (is it loaded, and may %q use %s?): %w",
				cmds[i]["command"], c.cfg.Username, ControlTopic, ctx.Err())
		}
	}
	return out, nil
}

// Connected reports whether the admin link is up.
func (c *Client) Connected() bool { return c.client.IsConnectionOpen() }

// Close disconnects.
func (c *Client) Close() { c.client.Disconnect(250) }
