package auditsyslog_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	syslog "github.com/leodido/go-syslog/v4"

	"github.com/camotp/camotp/internal/auditsyslog"
	"github.com/camotp/camotp/internal/model"
)

// roundTrip formats e, frames it, and reads it back with go-syslog's
// octet-counting parser, as a receiver does.
func roundTrip(t *testing.T, e model.AuditEntry) (auditsyslog.Row, string) {
	t.Helper()
	msg, err := auditsyslog.Message(e, "node-1")
	if err != nil {
		t.Fatalf("Message(%+v): %v", e, err)
	}
	var got []*rfc5424.SyslogMessage
	var perr error
	p := octetcounting.NewParser(syslog.WithMaxMessageLength(64<<10), syslog.WithListener(func(r *syslog.Result) {
		if r.Error != nil {
			perr = r.Error
			return
		}
		got = append(got, r.Message.(*rfc5424.SyslogMessage))
	}))
	p.Parse(strings.NewReader(string(auditsyslog.Frame(msg))))
	if perr != nil || len(got) != 1 {
		t.Fatalf("parse %q: %v, %d messages", msg, perr, len(got))
	}
	row, err := auditsyslog.ParseRow(got[0])
	if err != nil {
		t.Fatalf("ParseRow(%q): %v", msg, err)
	}
	m := got[0]
	if m.Appname == nil || *m.Appname != auditsyslog.AppName || m.MsgID == nil || *m.MsgID != auditsyslog.MsgID ||
		m.Hostname == nil || *m.Hostname != "node-1" || m.Timestamp == nil || !m.Timestamp.Equal(e.At.Truncate(time.Microsecond)) {
		t.Fatalf("header of %q: %+v", msg, m)
	}
	return row, msg
}

// Every field comes back as it was, whatever characters it holds: the
// three RFC 5424 §6.3.3 escapes, brackets, quotes, control characters,
// other scripts; invalid UTF-8 becomes U+FFFD; an over-long value is cut
// and the message says which.
func TestMessageRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 7, 31, 20, 123456789, time.UTC)
	base := model.AuditEntry{At: at, Actor: "admin", Action: "camera.assign", Subject: "BC4-000001", Result: "ok",
		SourceIP: "192.0.2.7", Detail: "to alice", Chain: 3, Seq: 42, MAC: []byte{0xde, 0xad, 0xbe, 0xef}}
	long := strings.Repeat("é", auditsyslog.MaxValue) // 2 bytes each
	tests := []struct {
		name   string
		mod    func(*model.AuditEntry)
		want   func(*model.AuditEntry)
		clip   []string
		sevErr bool
	}{
		{name: "plain"},
		{name: "escapes", mod: func(e *model.AuditEntry) { e.Detail = `a "quoted" ] bracket \ backslash \" both` }},
		{name: "sd lookalike", mod: func(e *model.AuditEntry) { e.Actor = `x"] [audit@32473 actor="root` }},
		{name: "controls", mod: func(e *model.AuditEntry) { e.Detail = "line\nnext\ttab\x00nul" }},
		{name: "scripts", mod: func(e *model.AuditEntry) { e.Subject = "Ærøskøbing 警察 🚓" }},
		{name: "empty fields", mod: func(e *model.AuditEntry) { e.SourceIP, e.Detail, e.MAC = "", "", nil }},
		{name: "error result", mod: func(e *model.AuditEntry) { e.Result = "error: camera offline" }, sevErr: true},
		{name: "invalid utf-8", mod: func(e *model.AuditEntry) { e.Actor = "bad\xffname" },
			want: func(e *model.AuditEntry) { e.Actor = "bad\uFFFDname" }},
		{name: "clipped", mod: func(e *model.AuditEntry) { e.Detail = long },
			want: func(e *model.AuditEntry) { e.Detail = long[:auditsyslog.MaxValue] }, clip: []string{"detail"}},
		{name: "clipped odd", mod: func(e *model.AuditEntry) { e.Detail = "x" + long },
			want: func(e *model.AuditEntry) { e.Detail = ("x" + long)[:auditsyslog.MaxValue-1] }, clip: []string{"detail"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			if tc.mod != nil {
				tc.mod(&e)
			}
			row, msg := roundTrip(t, e)
			want := e
			if tc.want != nil {
				tc.want(&want)
			}
			want.At = want.At.Truncate(time.Microsecond)
			if !reflect.DeepEqual(row.AuditEntry, want) || !reflect.DeepEqual(row.Clipped, tc.clip) {
				t.Fatalf("%q\nread back %+v clipped %v\nwant      %+v clipped %v", msg, row.AuditEntry, row.Clipped, want, tc.clip)
			}
			wantPri := "<86>" // authpriv.info
			if tc.sevErr {
				wantPri = "<85>" // authpriv.notice
			}
			if !strings.HasPrefix(msg, wantPri+"1 2026-11-26T07:31:20.123456Z node-1 camotp - audit [audit@32473 ") {
				t.Fatalf("header: %q", msg)
			}
			if strings.ContainsAny(msg[strings.LastIndex(msg, "]")+1:], "\n\x00") {
				t.Fatalf("control characters in MSG: %q", msg)
			}
		})
	}
}

// FuzzMessage: any row formats, parses with go-syslog, and reads back as
// it was (invalid UTF-8 replaced, values cut to MaxValue).
func FuzzMessage(f *testing.F) {
	f.Add("admin", "camera.assign", "BC4-1", "ok", "192.0.2.1", "to alice", 0, int64(1), []byte{1, 2})
	f.Add(`a"b`, `]`, `\`, "error: x", "", "\n\x00\xff", 7, int64(1<<40), []byte(nil))
	f.Add(strings.Repeat("]", 2000), "", "", "", "", strings.Repeat("\\", 3000), 1, int64(9), []byte{})
	f.Fuzz(func(t *testing.T, actor, action, subject, result, ip, detail string, chain int, seq int64, mac []byte) {
		if chain < 0 || seq < 1 {
			return
		}
		e := model.AuditEntry{At: time.Unix(1_700_000_000, 123456000).UTC(), Actor: actor, Action: action, Subject: subject,
			Result: result, SourceIP: ip, Detail: detail, Chain: chain, Seq: seq, MAC: mac}
		row, msg := roundTrip(t, e)
		fix := func(s string) string {
			s = strings.ToValidUTF8(s, "\uFFFD")
			if len(s) > auditsyslog.MaxValue {
				i := auditsyslog.MaxValue
				for i > 0 && !utf8.RuneStart(s[i]) {
					i--
				}
				s = s[:i]
			}
			return s
		}
		want := model.AuditEntry{At: e.At, Actor: fix(actor), Action: fix(action), Subject: fix(subject), Result: fix(result),
			SourceIP: fix(ip), Detail: fix(detail), Chain: chain, Seq: seq, MAC: mac}
		if len(mac) == 0 {
			want.MAC = nil
		}
		if len(mac)*2 > auditsyslog.MaxValue {
			return // a MAC is 32 bytes; a longer one is cut as text
		}
		if !reflect.DeepEqual(row.AuditEntry, want) {
			t.Fatalf("%q\nread back %+v\nwant      %+v", msg, row.AuditEntry, want)
		}
	})
}

// FuzzParseCursor: a cursor file never panics the reader, and one it
// reads writes back to the same cursor.
func FuzzParseCursor(f *testing.F) {
	f.Add([]byte(`{"target":"tcp://127.0.0.1:514","chains":{"0":12,"7":3}}`))
	f.Add([]byte(`{"chains":{"-1":1}}`))
	f.Add([]byte(`{"chains":{"01":1}}`))
	f.Add([]byte(`{"chains":{"0":-5}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte(`{"chains":{"0":12},"macs":{"0":"00ff"}}`))
	f.Add([]byte(`{"chains":{"0":12},"macs":{"1":"00ff"}}`)) // a MAC of no position
	f.Add([]byte(`{"chains":{"0":12},"macs":{"0":"zz"}}`))
	f.Add([]byte(`{"chains":{"0":12},"macs":{"0":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := auditsyslog.ParseCursor(data)
		if err != nil {
			return
		}
		back, err := auditsyslog.ParseCursor(c.Marshal())
		if err != nil || back.Target != c.Target || !reflect.DeepEqual(back.Seq, c.Seq) || !reflect.DeepEqual(back.MAC, c.MAC) {
			t.Fatalf("%q: %+v, back %+v %v", data, c, back, err)
		}
		for k, v := range c.Seq {
			if k < 0 || v < 0 {
				t.Fatalf("%q: chain %d at %d", data, k, v)
			}
		}
		for k, m := range c.MAC {
			if _, ok := c.Seq[k]; !ok || len(m) == 0 || len(m) > 64 {
				t.Fatalf("%q: MAC %x of chain %d", data, m, k)
			}
		}
	})
}

// FuzzParseTarget: a target either fails or names tcp/tls, a host and a
// port, and reads back the same from its own String.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:514", "tls://siem.example:6514", "tcp://[::1]:514", "udp://x:1", "tcp://x", "tcp://:514",
		"tls://u:p@h:1", "tcp://h:1/path", "tcp://h:99999", "tcp://h:syslog"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := auditsyslog.ParseTarget(s)
		if err != nil {
			return
		}
		back, err := auditsyslog.ParseTarget(tg.String())
		if err != nil || back != tg || tg.Addr == "" {
			t.Fatalf("%q: %+v, back %+v %v", s, tg, back, err)
		}
	})
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want auditsyslog.Target
		ok   bool
	}{
		{"tcp://127.0.0.1:514", auditsyslog.Target{Addr: "127.0.0.1:514"}, true},
		{"tls://siem.example:6514", auditsyslog.Target{TLS: true, Addr: "siem.example:6514"}, true},
		{"tcp://[::1]:514", auditsyslog.Target{Addr: "[::1]:514"}, true},
		{"udp://127.0.0.1:514", auditsyslog.Target{}, false},
		{"tcp://127.0.0.1", auditsyslog.Target{}, false},
		{"tls://u:p@h:6514", auditsyslog.Target{}, false},
		{"tcp://h:514/x", auditsyslog.Target{}, false},
		{"tcp://h:514?x=1", auditsyslog.Target{}, false},
		{"127.0.0.1:514", auditsyslog.Target{}, false},
	} {
		got, err := auditsyslog.ParseTarget(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// The cursor file: missing is empty; written atomically with mode 0600;
// read back; a damaged one is an error that says what to do.
func TestCursorFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), auditsyslog.CursorFile)
	c, err := auditsyslog.LoadCursor(path)
	if err != nil || c.Target != "" || len(c.Seq) != 0 {
		t.Fatalf("missing file: %+v %v", c, err)
	}
	want := auditsyslog.Cursor{Target: "tls://siem.example:6514", Seq: map[int]int64{0: 17, 5: 1 << 40}}
	if err := auditsyslog.SaveCursor(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cursor file mode: %v %v", fi.Mode(), err)
	}
	got, err := auditsyslog.LoadCursor(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v %v", got, err)
	}
	os.WriteFile(path, []byte(`{"chains":{"0":`), 0o600)
	if _, err := auditsyslog.LoadCursor(path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("damaged cursor: %v", err)
	}
}
