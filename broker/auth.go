// Package broker is camotp's embedded MQTT broker (mochi-mqtt/server/v2):
// per-camera authentication with signed tokens and topic ACLs, so a camera
// reaches only its own topics and only the server publishes commands.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
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

// OnConnectAuthenticate admits the server and registered cameras.
func (a *Auth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	clientID := pk.Connect.ClientIdentifier
	if user == a.serverUser {
		ok := subtle.ConstantTimeCompare(pk.Connect.Password, a.serverSecret) == 1 && clientID == a.serverClient
		if !ok {
			a.log.Warn("mqtt connect refused", "user", user, "remote", cl.Net.Remote, "reason", "bad server credentials")
		}
		return ok
	}
	if device.ValidateSerial(user) != nil || clientID != user {
		a.log.Warn("mqtt connect refused", "remote", cl.Net.Remote, "reason", "username must be a serial equal to the client id")
		return false
	}
	key, err := a.keys.CameraKey(context.Background(), user)
	if err != nil {
		a.log.Warn("mqtt connect refused", "serial", user, "remote", cl.Net.Remote, "reason", "unknown camera")
		return false
	}
	if err := key.VerifyToken(user, string(pk.Connect.Password), a.now()); err != nil {
		a.log.Warn("mqtt connect refused", "serial", user, "remote", cl.Net.Remote, "reason", err.Error())
		return false
	}
	if pk.Connect.WillFlag && !cameraMay(user, pk.Connect.WillTopic, true) {
		a.log.Warn("mqtt connect refused", "serial", user, "remote", cl.Net.Remote,
			"reason", "last will outside the camera's topics", "will_topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

// isServer tells the server's own client.
func (a *Auth) isServer(cl *mqtt.Client) bool {
	return string(cl.Properties.Username) == a.serverUser && cl.ID == a.serverClient
}

// OnACLCheck confines a camera to its own topics.
func (a *Auth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if a.isServer(cl) {
		return true
	}
	user := string(cl.Properties.Username)
	allowed := cameraMay(user, topic, write)
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
