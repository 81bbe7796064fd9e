// Package auditsyslog forwards the audit log to a syslog receiver as RFC
// 5424 messages over TCP or TLS with octet-counting framing (RFC 5425,
// RFC 6587 §3.4.1). The forwarder tails the audit table through its hash
// chains' positions (chain, seq), so the database itself is the buffer
// while the receiver is down: nothing is dropped and no queue can fill. A
// cursor file in the data directory keeps, per chain, the last position
// the receiver is known to have read, so delivery survives restarts of the
// receiver and of camotp; delivery is at least once (rows carry their chain
// and seq, so a receiver can drop the duplicates a resend makes).
package auditsyslog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/common"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/camotp/camotp/internal/model"
)

// SDID is the structured data element every message carries: "audit" in
// the private space of enterprise number 32473, the number RFC 5612
// reserves for documentation and examples (camotp has none of its own).
const SDID = "audit@32473"

// AppName and MsgID are the APP-NAME and MSGID of every message.
const (
	AppName = "camotp"
	MsgID   = "audit"
)

// Facility is the messages' facility: 10, security/authorization (authpriv).
const Facility = 10

// Severities: a row whose result is "ok" is informational, any other
// (a refusal, an error) a notice.
const (
	SeverityOK    = 6
	SeverityOther = 5
)

// MaxValue bounds each text parameter, in bytes: the audit log's fields
// are short (names, addresses, a line of detail), and receivers need only
// take 2048-byte messages (RFC 5425 §4.3.1; most take 8192). A longer
// value is cut at a character boundary and the message says so (clipped).
const MaxValue = 1024

// Param names of the structured data, in the order of the row's fields.
const (
	ParamAt       = "at"
	ParamActor    = "actor"
	ParamAction   = "action"
	ParamSubject  = "subject"
	ParamResult   = "result"
	ParamSourceIP = "source_ip"
	ParamDetail   = "detail"
	ParamChain    = "chain"
	ParamSeq      = "seq"
	ParamMAC      = "mac"
	ParamClipped  = "clipped"
)

// timeLayout is RFC 5424's TIMESTAMP: at most six fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Message is the RFC 5424 message of audit row e sent from host ("" or a
// name that is not printable US-ASCII: the nil value "-"): header with the
// row's time, structured data SDID with every field of the row (at,
// actor, action, subject, result, source_ip, detail, chain, seq, mac as hex), and
// a one-line summary as MSG.
func Message(e model.AuditEntry, host string) (string, error) {
	m := &rfc5424.SyslogMessage{}
	sev := SeverityOther
	if e.Result == "ok" {
		sev = SeverityOK
	}
	at := e.At.UTC().Format(timeLayout)
	m.SetPriority(uint8(Facility*8 + sev))
	m.SetVersion(1)
	m.SetTimestamp(at)
	if host != "" {
		m.SetHostname(host)
	}
	m.SetAppname(AppName)
	m.SetMsgID(MsgID)
	var clipped []string
	params := []struct{ name, value string }{
		{ParamAt, at}, {ParamActor, e.Actor}, {ParamAction, e.Action}, {ParamSubject, e.Subject},
		{ParamResult, e.Result}, {ParamSourceIP, e.SourceIP}, {ParamDetail, e.Detail},
		{ParamChain, strconv.Itoa(e.Chain)}, {ParamSeq, strconv.FormatInt(e.Seq, 10)}, {ParamMAC, hex.EncodeToString(e.MAC)},
	}
	for _, p := range params {
		v, cut := clip(strings.ToValidUTF8(p.value, "\uFFFD"), MaxValue)
		if cut {
			clipped = append(clipped, p.name)
		}
		if err := setParam(m, p.name, v); err != nil {
			return "", err
		}
	}
	if len(clipped) > 0 {
		if err := setParam(m, ParamClipped, strings.Join(clipped, ",")); err != nil {
			return "", err
		}
	}
	summary, _ := clip(strings.ToValidUTF8(fmt.Sprintf("%s %s %s: %s", e.Actor, e.Action, e.Subject, e.Result), "\uFFFD"), MaxValue)
	m.SetMessage(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, summary))
	s, err := m.String()
	if err != nil {
		return "", fmt.Errorf("audit row %d/%d as syslog: %w", e.Chain, e.Seq, err)
	}
	return s, nil
}

// setParam sets one parameter of SDID to the plain value v. The builder
// takes values in their escaped form (RFC 5424 §6.3.3: '"', '\' and ']'
// behind a backslash) and drops a value it cannot read without a word: a
// value that did not stay is an error.
func setParam(m *rfc5424.SyslogMessage, name, v string) error {
	m.SetParameter(SDID, name, common.EscapeBytes(v))
	if m.StructuredData == nil || (*m.StructuredData)[SDID][name] != v {
		return fmt.Errorf("syslog structured data %s: value %q not taken", name, v)
	}
	return nil
}

// clip cuts s to at most n bytes at a character boundary, and says whether
// it did.
func clip(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// Frame is msg with octet-counting framing: its length in bytes, a space,
// the message (RFC 5425 §4.3, RFC 6587 §3.4.1).
func Frame(msg string) []byte {
	b := make([]byte, 0, len(msg)+8)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// Row is the audit row a received message carries, as ParseRow reads it.
type Row struct {
	model.AuditEntry
	// Clipped names the fields cut to MaxValue.
	Clipped []string
}

// ParseRow reads the audit row back from a parsed RFC 5424 message (a
// receiver's view, used by the tests and by anyone checking a receiver's
// store against the database).
func ParseRow(m *rfc5424.SyslogMessage) (Row, error) {
	if m == nil || m.StructuredData == nil {
		return Row{}, errors.New("no structured data")
	}
	p, ok := (*m.StructuredData)[SDID]
	if !ok {
		return Row{}, fmt.Errorf("no %s element", SDID)
	}
	var r Row
	var err error
	if r.At, err = time.Parse(time.RFC3339Nano, p[ParamAt]); err != nil {
		return Row{}, fmt.Errorf("%s: %w", ParamAt, err)
	}
	r.Actor, r.Action, r.Subject, r.Result, r.SourceIP, r.Detail = p[ParamActor], p[ParamAction], p[ParamSubject], p[ParamResult], p[ParamSourceIP], p[ParamDetail]
	if r.Chain, err = strconv.Atoi(p[ParamChain]); err != nil || r.Chain < 0 {
		return Row{}, fmt.Errorf("%s %q: not a chain number", ParamChain, p[ParamChain])
	}
	if r.Seq, err = strconv.ParseInt(p[ParamSeq], 10, 64); err != nil || r.Seq < 1 {
		return Row{}, fmt.Errorf("%s %q: not a position", ParamSeq, p[ParamSeq])
	}
	if r.MAC, err = hex.DecodeString(p[ParamMAC]); err != nil {
		return Row{}, fmt.Errorf("%s: %w", ParamMAC, err)
	}
	if len(r.MAC) == 0 {
		r.MAC = nil
	}
	if c := p[ParamClipped]; c != "" {
		r.Clipped = strings.Split(c, ",")
	}
	return r, nil
}
