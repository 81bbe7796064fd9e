package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactPackets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RedactPackets(slog.NewTextHandler(&buf, nil)))
	log.Warn("error processing packet", "client", "CAM-A", "pk", "Password:[118 49 46] secret-token")
	log.With("payload", "sealed-bytes").Info("x")
	out := buf.String()
	if strings.Contains(out, "secret-token") || strings.Contains(out, "sealed-bytes") {
		t.Fatalf("packet leaked into log: %s", out)
	}
	if !strings.Contains(out, "client=CAM-A") || !strings.Contains(out, "pk=[redacted]") {
		t.Fatalf("other attributes lost: %s", out)
	}
}
