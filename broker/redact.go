package broker

import (
	"context"
	"log/slog"
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
