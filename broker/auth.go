// Package broker is camotp's embedded MQTT broker (mochi-mqtt/server/v2):
// per-camera authentication with signed tokens and topic ACLs, so a camera
// reaches only its own topics and only the server publishes commands. The
// same decisions answer an external broker's HTTP hook (HTTPHook, EMQX 5).
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
)

// CameraKeys looks up a registered camera's public identity.
type CameraKeys interface {
	CameraKey(ctx context.Context, serial string) (camkey.PublicKey, error)
}

// Auth is the broker hook that authenticates clients and checks topic ACLs.
//
//   - The server's client connects as ServerUser with the server secret and
//     may publish and subscribe anywhere.
//   - A camera connects with username = client ID = its serial and a token
//     signed by its identity key (camkey.Token); it may subscribe to
//     cams/<serial>/prov and publish to cams/<serial>/ack and
//     cams/<serial>/status only; its last will, if any, must be on one of
//     those two topics (mochi publishes wills without an ACL check).
//   - Anybody else is refused.
type Auth struct {
	mqtt.HookBase
	keys         CameraKeys
	serverUser   string
	serverClient string
	serverSecret []byte
	derived      *[32]byte // server box key, when derived passwords are accepted
	now          func() time.Time
	log          *slog.Logger
}

// NewAuth returns the hook.
func NewAuth(keys CameraKeys, serverUser, serverClient string, serverSecret []byte, now func() time.Time, log *slog.Logger) *Auth {
	if now == nil {
		now = time.Now
	}
	return &Auth{keys: keys, serverUser: serverUser, serverClient: serverClient, serverSecret: serverSecret, now: now, log: log}
}

// ID names the hook.
func (a *Auth) ID() string { return "camotp-auth" }

// Provides declares the events the hook handles.
func (a *Auth) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// Login is what a client presents in its CONNECT packet.
type Login struct {
	Username string
	ClientID string
	Password []byte
	// Will tells whether the client set a last will, on WillTopic.
	Will      bool
	WillTopic string
}

// AcceptDerivedPasswords makes Authenticate also accept, from a camera, the
// password derived from its X25519 key and the server's
// (camkey.BrokerPassword), next to its signed token. The embedded broker
// does not call it (its cameras present tokens); the HTTP hook for an
// external broker does. Call it before the first Authenticate.
func (a *Auth) AcceptDerivedPasswords(serverBoxKey [32]byte) {
	k := serverBoxKey
	a.derived = &k
}

// Authenticate decides a CONNECT: nil admits the client, an error says why
// not (for logs; it never names a secret). The server's client must present
// the server secret under its own client ID; a camera its serial as
// username and client ID, and a token signed by its registered key (or its
// derived password, see AcceptDerivedPasswords); its last will, if any,
// must be on one of its own topics.
func (a *Auth) Authenticate(ctx context.Context, l Login) error {
	if l.Username == a.serverUser {
		if subtle.ConstantTimeCompare(l.Password, a.serverSecret) != 1 || !a.serverClientID(l.ClientID) {
			return errors.New("bad server credentials")
		}
		return nil
	}
	if device.ValidateSerial(l.Username) != nil || l.ClientID != l.Username {
		return errors.New("username must be a serial equal to the client id")
	}
	key, err := a.keys.CameraKey(ctx, l.Username)
	if err != nil {
		return errors.New("unknown camera")
	}
	pw := string(l.Password)
	if a.derived != nil && camkey.IsBrokerPassword(pw) {
		err = key.VerifyBrokerPassword(*a.derived, l.Username, pw)
	} else {
		err = key.VerifyToken(l.Username, pw, a.now())
	}
	if err != nil {
		return err
	}
	if l.Will && !cameraMay(l.Username, l.WillTopic, true) {
		return errors.New("last will outside the camera's topics")
	}
	return nil
}

// isServer tells the server's own client.
func (a *Auth) isServer(cl *mqtt.Client) bool {
	return string(cl.Properties.Username) == a.serverUser && a.serverClientID(cl.ID)
}

// serverClientID tells the client IDs of the server's links: its own, or
// its own followed by "-" and a node name (several nodes on one broker;
// no camera serial has that form).
func (a *Auth) serverClientID(id string) bool {
	return id == a.serverClient || strings.HasPrefix(id, a.serverClient+"-") && len(id) > len(a.serverClient)+1
}

// Allowed decides whether the client (username, client ID) may publish
// (write) or subscribe to topic: the server anywhere, a camera on its own
// topics only.
func (a *Auth) Allowed(username, clientID, topic string, write bool) bool {
	if username == a.serverUser && a.serverClientID(clientID) {
		return true
	}
	return cameraMay(username, topic, write)
}

// OnConnectAuthenticate admits the server and registered cameras.
func (a *Auth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	l := Login{Username: string(pk.Connect.Username), ClientID: pk.Connect.ClientIdentifier, Password: pk.Connect.Password,
		Will: pk.Connect.WillFlag, WillTopic: pk.Connect.WillTopic}
	if err := a.Authenticate(context.Background(), l); err != nil {
		attrs := []any{"user", l.Username, "remote", cl.Net.Remote, "reason", err.Error()}
		if l.Will {
			attrs = append(attrs, "will_topic", l.WillTopic)
		}
		a.log.Warn("mqtt connect refused", attrs...)
		return false
	}
	return true
}

// OnACLCheck confines a camera to its own topics.
func (a *Auth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	allowed := a.Allowed(user, cl.ID, topic, write)
	if !allowed {
		a.log.Warn("mqtt acl denied", "client", user, "topic", topic, "write", write)
	}
	return allowed
}

// cameraMay is a camera's ACL: it subscribes to cams/<serial>/prov and
// publishes to cams/<serial>/ack and cams/<serial>/status.
func cameraMay(serial, topic string, write bool) bool {
	leaf, ok := strings.CutPrefix(topic, "cams/"+serial+"/")
	return ok && device.ValidateSerial(serial) == nil &&
		((write && (leaf == "ack" || leaf == "status")) || (!write && leaf == "prov"))
}
