package provisioning

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/auditexport"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
)

// AuditExportPath streams the audit rows a filter selects: query since
// (RFC 3339, required), until (RFC 3339, exclusive), actor, subject,
// action, result, source (exact, or a prefix ending in "*"), format (csv
// or jsonl). Rows come newest first.
const AuditExportPath = "/api/v1/admin/audit/export"

// maxFilterValue bounds each text filter of an export.
const maxFilterValue = 256

// ParseAuditExport reads an export's filter and format from its query,
// or says what is wrong with it.
func ParseAuditExport(q url.Values) (model.AuditFilter, string, error) {
	var f model.AuditFilter
	format := q.Get("format")
	if !auditexport.ValidFormat(format) {
		return f, "", fmt.Errorf("format %q: want csv or jsonl", format)
	}
	for _, tf := range []struct {
		name     string
		dst      *time.Time
		required bool
	}{{"since", &f.From, true}, {"until", &f.To, false}} {
		s := q.Get(tf.name)
		if s == "" {
			if tf.required {
				return f, "", fmt.Errorf("%s: required (RFC 3339, e.g. 2026-11-01T00:00:00Z)", tf.name)
			}
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return f, "", fmt.Errorf("%s %q: not an RFC 3339 time", tf.name, s)
		}
		*tf.dst = t.UTC()
	}
	if !f.To.IsZero() && !f.To.After(f.From) {
		return f, "", fmt.Errorf("until %s is not after since %s", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	for _, tf := range []struct {
		name string
		dst  *string
	}{{"actor", &f.Actor}, {"subject", &f.Subject}, {"action", &f.Action}, {"result", &f.Result}, {"source", &f.Source}} {
		v := q.Get(tf.name)
		if len(v) > maxFilterValue {
			return f, "", fmt.Errorf("%s: longer than %d bytes", tf.name, maxFilterValue)
		}
		*tf.dst = v
	}
	return f, format, nil
}

// exportAudit streams the filtered rows (at most auditexport.MaxAtOnce at
// once: 429 past it) and audits that it did.
func (a *AdminAPI) exportAudit(w http.ResponseWriter, r *http.Request) {
	f, format, err := ParseAuditExport(r.URL.Query())
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.auditSlot(w) {
		return
	}
	defer func() { <-a.exports }()
	detail := fmt.Sprintf("format=%s since=%s until=%s actor=%q subject=%q action=%q result=%q source=%q", format,
		f.From.Format(time.RFC3339), timeOrAny(f.To), f.Actor, f.Subject, f.Action, f.Result, f.Source)
	if err := a.store.Audit(r.Context(), model.AuditEntry{Actor: adminActor, Action: "audit.export", Subject: "audit", Result: "ok",
		SourceIP: httpx.ClientIP(r), Detail: detail}); err != nil {
		writeErr(w, err)
		return
	}
	name := "camotp-audit-" + strings.NewReplacer(":", "", "-", "").Replace(f.From.Format("2006-01-02T15:04:05Z")) + "." + format
	if _, err := auditexport.Stream(w, r, format, name, func(ctx context.Context, fn func(model.AuditEntry) error) error {
		return a.store.AuditEach(ctx, f, fn)
	}); err != nil {
		panic(http.ErrAbortHandler) // a broken download, not a short log
	}
}

// timeOrAny writes a filter's time bound.
func timeOrAny(t time.Time) string {
	if t.IsZero() {
		return "any"
	}
	return t.UTC().Format(time.RFC3339)
}
