package model

import (
	"net/netip"
	"time"
)

// RadiusClient is a NAS allowed to send RADIUS requests: requests from an
// address inside CIDR are checked with Secret.
type RadiusClient struct {
	Name      string       `json:"name"`
	CIDR      netip.Prefix `json:"cidr"`
	CreatedAt time.Time    `json:"createdAt"`
	// Secret is the shared secret, opened with the master key. It is never
	// marshalled.
	Secret []byte `json:"-"`
}
