package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
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

// lockedBuffer is a log destination the broker's goroutines write while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoUnnamedRecords: mochi's listener logs a connection that ended in
// an error as a WARN with an empty message; the broker names it and keeps
// it at debug level.
func TestNoUnnamedRecords(t *testing.T) {
	var info bytes.Buffer
	slog.New(nameUnnamed(slog.NewTextHandler(&info, nil))).With("listener", "tcp").Warn("", "error", errors.New("read connection: EOF"))
	if info.Len() != 0 {
		t.Fatalf("logged at info level: %s", info.String())
	}
	// A packet of a client whose connection closed meanwhile (a camera
	// stopped as the server shut down): debug too; other packet errors stay.
	plain := slog.New(nameUnnamed(slog.NewTextHandler(&info, nil)))
	plain.Warn("error processing packet", "error", errors.New("connection not open"), "client", "CAM-A")
	plain.Warn("error processing packet", "error", errors.New("write tcp 127.0.0.1:1883->127.0.0.1:34670: use of closed network connection"), "client", "CAM-A")
	if info.Len() != 0 {
		t.Fatalf("a packet of a closed connection logged at info level: %s", info.String())
	}
	plain.Warn("error processing packet", "error", errors.New("malformed packet"), "client", "CAM-A")
	if !strings.Contains(info.String(), "level=WARN") {
		t.Fatalf("another packet error was hidden: %q", info.String())
	}

	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBroker(t, func(c *Config) { c.Log = log; c.Auth.log = log }, "CAM-A")
	if _, rc, err := rawConnect(t, nil, b.Addr(), "CAM-A", "CAM-A", "not-a-token", 30); err == nil && rc == 0 {
		t.Fatal("a bad token connected")
	}
	eventually(t, "the refused connection logged", func() bool { return strings.Contains(out.String(), connectionEnded) })
	text := out.String()
	if strings.Contains(text, `msg=""`) {
		t.Fatalf("a record with no message:\n%s", text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, connectionEnded) && (!strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "listener=tcp") || !strings.Contains(line, "error=")) {
			t.Fatalf("want a debug record with the listener and the error: %s", line)
		}
	}
	if !strings.Contains(text, `level=WARN msg="mqtt connect refused"`) {
		t.Fatalf("the refusal itself is not logged by the auth hook:\n%s", text)
	}
}
