package provisioning

import (
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// noStore is a paho Store that keeps nothing.
//
// paho v1.5.1 has a data race (upstream issue #703): with CleanSession=false
// every connect runs client.resume(), which walks the store and sets the DUP
// flag on each stored outgoing PUBLISH while startOutgoingComms may be
// packing the very same packet: any QoS 1 publish made once the connection
// is up (the OnConnect handler, an ack, a command) is stored and sent at
// once, and resume() finds it in the store. With nothing in the store,
// resume() finds nothing, so the race cannot happen on any connect.
//
// QoS 1 delivery is kept above paho instead: the agent keeps its unacked
// acks in its own outbox and sends them again on the next connection, and
// the server keeps every pending command in its database and publishes it
// again when the camera or the server link comes back.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
