package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/auditexport"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/signin"
)

// The audit log viewer: filters (time range, actor, subject, action,
// result, source), pages newest first by a cursor (the row IDs around
// them, never an offset into a million rows), and exports of the filtered
// rows as CSV and JSON Lines, streamed: rows are written as the store
// reads them, a batch at a time, so memory stays bounded whatever the
// number of rows.

// MaxExports bounds the exports that run at once: each holds a client
// connection and reads the whole log.
const MaxExports = auditexport.MaxAtOnce

// auditSlot takes one of the MaxExports slots of the reads of the whole
// audit log (exports, chain checks), or answers 429 and returns false;
// the caller gives a slot it took back with <-wb.exports.
func (wb *Web) auditSlot(w http.ResponseWriter, r *http.Request, st signin.Staff) bool {
	select {
	case wb.exports <- struct{}{}:
		return true
	default:
		httpx.SetRetryAfter(w, 10*time.Second)
		wb.renderConsole(w, r, http.StatusTooManyRequests, "forbidden.html", console{Staff: st,
			Error: fmt.Sprintf("%d exports or checks of the audit log are running already: try again when one has finished.", MaxExports)})
		return false
	}
}

// dateLayouts are the forms a time filter is read in (UTC), as a
// datetime-local input sends it.
var dateLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"}

// auditActions are suggestions of the action filter.
var auditActions = []string{"login.*", "login.password", "login.mfa", "logout", "mfa.*", "camera.*", "camera.assign",
	"camera.unassign", "camera.bulk-assign", "provision.*", "rotate.*", "wipe.*", "user.*", "user.unblock", "user.reset-mfa",
	"user.forget-devices", "org.policy", "audit.export", "admin.auth"}

// auditList is the audit viewer.
type auditList struct {
	From, To, Actor, Subject, Action, Result, Source string
	Actions                                          []string
	Rows                                             []model.AuditEntry
	Newer, Older                                     string
	CSV, JSONL                                       string
	Sizes                                            []filterOption
}

// auditFilter reads the filter of the request's query, and what is wrong
// with it.
func auditFilter(v url.Values) (model.AuditFilter, []string) {
	var bad []string
	f := model.AuditFilter{Actor: clip(v.Get("actor"), maxSearch), Subject: clip(v.Get("subject"), maxSearch),
		Action: clip(v.Get("action"), maxSearch), Result: clip(v.Get("result"), maxSearch), Source: clip(v.Get("source"), maxSearch)}
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		s := strings.TrimSpace(v.Get(tf.name))
		if s == "" {
			continue
		}
		ok := false
		for _, l := range dateLayouts {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				*tf.dst, ok = t, true
				break
			}
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%q is not a time (YYYY-MM-DD HH:MM, UTC): ignored", s))
		}
	}
	return f, bad
}

// filterValues are the filter's fields of the query v, for links.
func filterValues(v url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"from", "to", "actor", "subject", "action", "result", "source", "size"} {
		if s := v.Get(k); s != "" {
			out.Set(k, s)
		}
	}
	return out
}

func (wb *Web) auditPage(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	v := r.URL.Query()
	f, bad := auditFilter(v)
	size := model.DefaultPageSize
	for _, n := range pageSizes {
		if v.Get("size") == strconv.Itoa(n) {
			size = n
		}
	}
	before, _ := strconv.ParseInt(v.Get("before"), 10, 64)
	after, _ := strconv.ParseInt(v.Get("after"), 10, 64)
	q := model.AuditQuery{AuditFilter: f, Before: max(before, 0), After: max(after, 0), Limit: size + 1}
	if q.After > 0 {
		q.Before = 0
	}
	rows, err := wb.Audit.AuditPage(r.Context(), q)
	if err != nil {
		wb.consoleError(w, r, st, "audit page", err)
		return
	}
	hasNewer, hasOlder := q.Before > 0, q.After > 0
	switch {
	case q.After > 0 && len(rows) > size: // the newest is of the page after
		rows, hasNewer = rows[1:], true
	case q.After == 0 && len(rows) > size:
		rows, hasOlder = rows[:size], true
	}
	keep := filterValues(v)
	link := func(k string, id int64) string {
		u := url.Values{}
		for key, val := range keep {
			u[key] = val
		}
		u.Set(k, strconv.FormatInt(id, 10))
		return "/admin/audit?" + u.Encode()
	}
	l := &auditList{From: v.Get("from"), To: v.Get("to"), Actor: f.Actor, Subject: f.Subject, Action: f.Action, Result: f.Result,
		Source: f.Source, Actions: auditActions, Rows: rows}
	if len(rows) > 0 {
		if hasNewer {
			l.Newer = link("after", rows[0].ID)
		}
		if hasOlder {
			l.Older = link("before", rows[len(rows)-1].ID)
		}
	} else if hasNewer || hasOlder {
		l.Newer = "/admin/audit?" + keep.Encode()
	}
	for _, format := range []string{"csv", "jsonl"} {
		u := filterValues(v)
		u.Del("size")
		u.Set("format", format)
		if format == "csv" {
			l.CSV = "/admin/audit/export?" + u.Encode()
		} else {
			l.JSONL = "/admin/audit/export?" + u.Encode()
		}
	}
	for _, n := range pageSizes {
		l.Sizes = append(l.Sizes, filterOption{strconv.Itoa(n), strconv.Itoa(n) + " a page", n == size})
	}
	c := console{Staff: st, Section: "audit", Audit: l}
	if len(bad) > 0 {
		c.Error = strings.Join(bad, "; ")
	}
	wb.renderConsole(w, r, http.StatusOK, "console_audit.html", c)
}

// auditExport streams the rows of the request's filter as CSV or JSON
// Lines, newest first, and audits that it did.
func (wb *Web) auditExport(w http.ResponseWriter, r *http.Request, st signin.Staff) {
	f, bad := auditFilter(r.URL.Query())
	format := r.URL.Query().Get("format")
	if !auditexport.ValidFormat(format) {
		http.Error(w, "format must be csv or jsonl", http.StatusBadRequest)
		return
	}
	if len(bad) > 0 {
		http.Error(w, strings.Join(bad, "; "), http.StatusBadRequest)
		return
	}
	if !wb.auditSlot(w, r, st) {
		return
	}
	defer func() { <-wb.exports }()
	detail := fmt.Sprintf("format=%s from=%s to=%s actor=%q subject=%q action=%q result=%q source=%q", format,
		timeOrAny(f.From), timeOrAny(f.To), f.Actor, f.Subject, f.Action, f.Result, f.Source)
	e := model.AuditEntry{Actor: st.Username, Action: "audit.export", Subject: "audit", Result: "ok", SourceIP: httpx.ClientIP(r), Detail: detail}
	if err := wb.Audit.Audit(r.Context(), e); err != nil {
		status, msg := wb.serverError(w, "audit export", err)
		http.Error(w, msg, status)
		return
	}
	name := "camotp-audit-" + wb.now().UTC().Format("20060102-150405") + "." + format
	n, err := auditexport.Stream(w, r, format, name, func(ctx context.Context, fn func(model.AuditEntry) error) error {
		return wb.Audit.AuditEach(ctx, f, fn)
	})
	if err != nil {
		// The rows sent so far went out with a 200: cut the response so
		// that the client sees a broken download, not a short log.
		if r.Context().Err() == nil {
			wb.log.Warn("audit export cut short", "rows", n, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}

// timeOrAny writes a filter's time bound.
func timeOrAny(t time.Time) string {
	if t.IsZero() {
		return "any"
	}
	return t.UTC().Format(time.RFC3339)
}
