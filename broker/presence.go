package broker

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// presenceHook reports authenticated cameras coming online and going
// offline, from the broker's own session events: a clean DISCONNECT, a
// dropped TCP connection and a keep-alive timeout all count as offline.
//
// When a camera reconnects before its old connection is gone, mochi takes
// the old session over; the old connection's disconnect is not reported,
// so the last event for a serial always matches its current connection.
type presenceHook struct {
	mqtt.HookBase
	isServer func(cl *mqtt.Client) bool
	notify   func(serial string, online bool)

	mu      sync.Mutex // serialises notify calls, so events keep their order
	current map[string]*mqtt.Client
}

func newPresenceHook(isServer func(*mqtt.Client) bool, notify func(string, bool)) *presenceHook {
	return &presenceHook{isServer: isServer, notify: notify, current: map[string]*mqtt.Client{}}
}

// ID names the hook.
func (h *presenceHook) ID() string { return "camotp-presence" }

// Provides declares the events the hook handles.
func (h *presenceHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablished, mqtt.OnDisconnect}, []byte{b})
}

// OnSessionEstablished reports a camera online once its CONNACK is sent.
func (h *presenceHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if h.isServer(cl) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current[cl.ID] = cl
	h.notify(cl.ID, true)
}

// OnDisconnect reports a camera offline unless a newer connection of the
// same camera has replaced this one.
func (h *presenceHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if h.isServer(cl) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.current[cl.ID] != cl {
		return
	}
	delete(h.current, cl.ID)
	h.notify(cl.ID, false)
}
