package model

import "time"

// Result is how the audit log records the outcome of an action: "ok", or
// "error: " and the error.
func Result(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

// AuditEntry is one audit log row.
type AuditEntry struct {
	// ID orders the log (newest highest); set by the reads that page it.
	ID       int64     `json:"id,omitempty"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Subject  string    `json:"subject"`
	Result   string    `json:"result"`
	SourceIP string    `json:"sourceIp,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Chain    int       `json:"chain"`
	Seq      int64     `json:"seq"`
	MAC      []byte    `json:"mac,omitempty"`
}
