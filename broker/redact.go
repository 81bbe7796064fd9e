package broker

import (
	"context"
	"log/slog"
	"strings"
)

// redactHandler drops the attributes in which mochi prints whole packets
// (CONNECT passwords and payloads must never reach a log).
type redactHandler struct{ slog.Handler }

// RedactPackets wraps h so that packet dumps are removed from records.
func RedactPackets(h slog.Handler) slog.Handler { return redactHandler{h} }

func redacted(a slog.Attr) bool { return a.Key == "pk" || a.Key == "packet" || a.Key == "payload" }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		if redacted(a) {
			out.AddAttrs(slog.String(a.Key, "[redacted]"))
		} else {
			out.AddAttrs(a)
		}
		return true
	})
	return r.Handler.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	keep := as[:0:0]
	for _, a := range as {
		if !redacted(a) {
			keep = append(keep, a)
		}
	}
	return redactHandler{r.Handler.WithAttrs(keep)}
}

func (r redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{r.Handler.WithGroup(name)}
}

// connectionEnded is the message given to mochi's records that have none:
// its listener logs each connection that ended in an error with an empty
// message (a login refused, which the auth hook has logged already, a
// client that never finished its CONNECT, a dropped socket).
const connectionEnded = "mqtt connection ended"

// unnamedHandler gives mochi's message-less records a message and the
// debug level, and its records of packets from connections that closed
// meanwhile the debug level: they are the normal churn of a fleet, not
// warnings.
type unnamedHandler struct{ slog.Handler }

// nameUnnamed wraps h so that records with an empty message read
// connectionEnded and are logged only at the debug level.
func nameUnnamed(h slog.Handler) slog.Handler { return unnamedHandler{h} }

// closedPacket is mochi's record of a packet whose client's connection
// closed while it was being handled (a camera stopping, the server
// shutting down): normal churn too.
func closedPacket(rec slog.Record) bool {
	if rec.Message != "error processing packet" {
		return false
	}
	closed := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			for _, c := range closedConn {
				closed = closed || strings.Contains(a.Value.String(), c)
			}
		}
		return !closed
	})
	return closed
}

// closedConn are the errors of a packet whose connection closed under it:
// mochi's own, the network's when the socket was closed on our side, and
// the peer's going away.
var closedConn = []string{"connection not open", "use of closed network connection", "broken pipe", "connection reset by peer"}

func (u unnamedHandler) Handle(ctx context.Context, rec slog.Record) error {
	msg := rec.Message
	switch {
	case msg == "":
		msg = connectionEnded
	case !closedPacket(rec):
		return u.Handler.Handle(ctx, rec)
	}
	if !u.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	out := slog.NewRecord(rec.Time, slog.LevelDebug, msg, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return u.Handler.Handle(ctx, out)
}

func (u unnamedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return unnamedHandler{u.Handler.WithAttrs(as)}
}

func (u unnamedHandler) WithGroup(name string) slog.Handler {
	return unnamedHandler{u.Handler.WithGroup(name)}
}
