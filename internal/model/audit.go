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
	// Chain is the hash chain the row is in (SQLite: 0; PostgreSQL: one of
	// several, so sign-ins on several nodes do not all wait for one lock).
	Chain int `json:"chain"`
	// Seq is the row's position in its chain, from 1, without gaps; within
	// a chain, Seq order is commit order.
	Seq int64 `json:"seq"`
	// MAC links the row to the one before it in its chain: a keyed hash
	// (from the master key) of that row's MAC and this row's fields.
	MAC []byte `json:"mac,omitempty"`
}

// AuditVerdict is what checking the audit log's hash chains found.
type AuditVerdict struct {
	// Rows is how many rows were checked, in Chains chains.
	Rows   int64 `json:"rows"`
	Chains int   `json:"chains"`
	// Heads are, per chain, the last row's Seq and MAC as the chain's
	// head records them: compare them with a copy kept elsewhere (the
	// syslog receiver) to catch rows cut off the end of a chain together
	// with its head.
	Heads []AuditHead `json:"heads"`
	// Broken is the first broken link, nil when every chain holds.
	Broken *AuditBreak `json:"broken,omitempty"`
}

// AuditHead is the end of one hash chain.
type AuditHead struct {
	Chain int    `json:"chain"`
	Seq   int64  `json:"seq"`
	MAC   []byte `json:"mac,omitempty"`
}

// AuditBreak is where a hash chain stops holding.
type AuditBreak struct {
	Chain int `json:"chain"`
	// Seq is the position where the chain breaks, ID the row found there
	// (0 when the row is missing).
	Seq int64 `json:"seq"`
	ID  int64 `json:"id,omitempty"`
	// Reason says what is wrong: a row edited, missing, out of order, or
	// a row outside every chain.
	Reason string `json:"reason"`
}
