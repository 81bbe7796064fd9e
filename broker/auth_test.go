package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/camotp/camotp/internal/camkey"
)

type keys map[string]camkey.PublicKey

func (k keys) CameraKey(_ context.Context, serial string) (camkey.PublicKey, error) {
	if p, ok := k[serial]; ok {
		return p, nil
	}
	return camkey.PublicKey{}, errors.New("unknown")
}

func client(id, user string) *mqtt.Client {
	cl := &mqtt.Client{ID: id}
	cl.Properties.Username = []byte(user)
	return cl
}

func TestAuthConnect(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := camkey.Generate()
	b, _ := camkey.Generate()
	auth := NewAuth(keys{"CAM-A": a.Public()}, "srv", "srv-client", []byte("s3cret"), func() time.Time { return now },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		name           string
		id, user, pass string
		ok             bool
	}{
		{"server", "srv-client", "srv", "s3cret", true},
		{"server wrong secret", "srv-client", "srv", "s3cret!", false},
		{"server other client id", "x", "srv", "s3cret", false},
		{"camera", "CAM-A", "CAM-A", a.Token("CAM-A", now), true},
		{"camera token 4 min old", "CAM-A", "CAM-A", a.Token("CAM-A", now.Add(-4*time.Minute)), true},
		{"camera token 6 min old", "CAM-A", "CAM-A", a.Token("CAM-A", now.Add(-6*time.Minute)), false},
		{"camera signed by other key", "CAM-A", "CAM-A", b.Token("CAM-A", now), false},
		{"token for another serial", "CAM-A", "CAM-A", a.Token("CAM-B", now), false},
		{"client id differs", "CAM-X", "CAM-A", a.Token("CAM-A", now), false},
		{"unregistered camera", "CAM-B", "CAM-B", b.Token("CAM-B", now), false},
		{"anonymous", "anon", "", "", false},
		{"wildcard username", "#", "#", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pk packets.Packet
			pk.Connect.ClientIdentifier = tc.id
			pk.Connect.Username = []byte(tc.user)
			pk.Connect.Password = []byte(tc.pass)
			if got := auth.OnConnectAuthenticate(client(tc.id, tc.user), pk); got != tc.ok {
				t.Fatalf("OnConnectAuthenticate = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestAuthACL(t *testing.T) {
	auth := NewAuth(keys{}, "srv", "srv-client", []byte("x"), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cam := client("CAM-A", "CAM-A")
	tests := []struct {
		cl    *mqtt.Client
		topic string
		write bool
		ok    bool
	}{
		{cam, "cams/CAM-A/prov", false, true},
		{cam, "cams/CAM-A/prov", true, false}, // only the server publishes commands
		{cam, "cams/CAM-A/ack", true, true},
		{cam, "cams/CAM-A/status", true, true},
		{cam, "cams/CAM-A/ack", false, false},
		{cam, "cams/CAM-B/prov", false, false},
		{cam, "cams/CAM-B/ack", true, false},
		{cam, "cams/+/prov", false, false},
		{cam, "cams/#", false, false},
		{cam, "#", false, false},
		{cam, "$SYS/broker/clients", false, false},
		{cam, "cams/CAM-A/prov/x", false, false},
		{client("srv-client", "srv"), "cams/CAM-B/prov", true, true},
		{client("srv-client", "srv"), "cams/+/ack", false, true},
		{client("other", "srv"), "cams/CAM-B/prov", true, false},
	}
	for _, tc := range tests {
		if got := auth.OnACLCheck(tc.cl, tc.topic, tc.write); got != tc.ok {
			t.Errorf("%s write=%v %s: %v, want %v", tc.cl.ID, tc.write, tc.topic, got, tc.ok)
		}
	}
}

func TestAuthWill(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := camkey.Generate()
	auth := NewAuth(keys{"CAM-A": a.Public()}, "srv", "srv-client", []byte("s3cret"), func() time.Time { return now },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		id, user, pass string
		will           string // "" for no will
		ok             bool
	}{
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "", true},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/CAM-A/status", true},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/CAM-A/ack", true},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/CAM-A/prov", false},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/CAM-B/status", false},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/CAM-A/status/x", false},
		{"CAM-A", "CAM-A", a.Token("CAM-A", now), "cams/+/status", false},
		{"srv-client", "srv", "s3cret", "cams/CAM-B/status", true},
	}
	for _, tc := range tests {
		var pk packets.Packet
		pk.Connect.ClientIdentifier, pk.Connect.Username, pk.Connect.Password = tc.id, []byte(tc.user), []byte(tc.pass)
		if tc.will != "" {
			pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillRetain = true, tc.will, true
		}
		if got := auth.OnConnectAuthenticate(client(tc.id, tc.user), pk); got != tc.ok {
			t.Errorf("%s with will %q: %v, want %v", tc.id, tc.will, got, tc.ok)
		}
	}
}
