package storage

import (
	"context"
	"crypto/hmac"
	"encoding/binary"
	"fmt"

	"github.com/camotp/camotp/internal/model"
)

// The audit log's hash chains. Every row carries the MAC of its chain's
// row before it: a keyed hash (a key derived from the master key) over
// that MAC and the row's own fields, so a row edited, deleted, inserted
// or moved in the database breaks the chain from there on, and nobody
// without the master key can mend it. A chain's head row keeps its last
// Seq and MAC and is locked by each append until commit, which makes Seq
// order commit order.

// auditMACPurpose names the master key's derived MAC key of the chains.
const auditMACPurpose = "camotp-audit-chain-v1"

// AuditMAC is the MAC of row e (its Chain, Seq and fields; not its ID,
// which the database assigns) following prev, the MAC of the row before it
// in its chain (nil for the first). At is taken in milliseconds, as rows
// keep it.
func (s Sealer) AuditMAC(prev []byte, e model.AuditEntry) []byte {
	b := make([]byte, 0, 128+len(e.Detail))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Chain))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixMilli()))
	for _, f := range []string{e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(prev)))
	b = append(b, prev...)
	return s.key.MAC(auditMACPurpose, b)
}

// Link makes e the row after its chain's head (headSeq, headMAC): it
// sets e's Seq and MAC; e.MAC is then the chain's new head MAC.
func (s Sealer) Link(e *model.AuditEntry, headSeq int64, headMAC []byte) {
	e.Seq = headSeq + 1
	e.MAC = s.AuditMAC(headMAC, *e)
}

// ChainCheck follows the rows of the audit chains, each chain's rows in
// Seq order (chains in any order, one after another), and finds the first
// broken link.
type ChainCheck struct {
	seal    Sealer
	heads   []model.AuditHead
	last    map[int]model.AuditHead // the last row accepted, per chain
	verdict model.AuditVerdict
}

// NewChainCheck starts a check with seal's key, of the chains whose heads
// were read before any row: rows committed after that read are checked
// too, and a chain must reach at least its head.
func NewChainCheck(seal Sealer, heads []model.AuditHead) *ChainCheck {
	return &ChainCheck{seal: seal, heads: heads, last: make(map[int]model.AuditHead, len(heads)),
		verdict: model.AuditVerdict{Chains: len(heads), Heads: heads}}
}

// broke records the first break; later ones are not looked for.
func (c *ChainCheck) broke(chain int, seq, id int64, reason string) {
	if c.verdict.Broken == nil {
		c.verdict.Broken = &model.AuditBreak{Chain: chain, Seq: seq, ID: id, Reason: reason}
	}
}

// Row takes the next row. It returns false once a link is broken: nothing
// after it need be read.
func (c *ChainCheck) Row(e model.AuditEntry) bool {
	if c.verdict.Broken != nil {
		return false
	}
	prev := c.last[e.Chain]
	c.verdict.Rows++
	switch want := prev.Seq + 1; {
	case e.Seq > want:
		c.broke(e.Chain, want, 0, fmt.Sprintf("row %d of chain %d is missing (deleted): the next row found is %d (id %d)", want, e.Chain, e.Seq, e.ID))
		return false
	case e.Seq < want:
		c.broke(e.Chain, e.Seq, e.ID, fmt.Sprintf("row %d of chain %d appears twice (id %d)", e.Seq, e.Chain, e.ID))
		return false
	}
	if !hmac.Equal(c.seal.AuditMAC(prev.MAC, e), e.MAC) {
		c.broke(e.Chain, e.Seq, e.ID, fmt.Sprintf("row %d of chain %d (id %d) does not follow its chain: it was edited, a row before it was replaced, or rows were reordered", e.Seq, e.Chain, e.ID))
		return false
	}
	c.last[e.Chain] = model.AuditHead{Chain: e.Chain, Seq: e.Seq, MAC: e.MAC}
	return true
}

// Unchained records a row found outside every chain: a row written into
// the database by something other than camotp.
func (c *ChainCheck) Unchained(id int64) {
	c.broke(-1, 0, id, fmt.Sprintf("row id %d is in no chain: it was inserted into the database directly", id))
}

// Finish ends the check: every chain must reach its head, and where it
// ends there, end with the head's MAC. A chain that stops short had rows
// cut off its end.
func (c *ChainCheck) Finish() model.AuditVerdict {
	for _, h := range c.heads {
		l := c.last[h.Chain]
		switch {
		case c.verdict.Broken != nil:
		case l.Seq < h.Seq:
			c.broke(h.Chain, l.Seq+1, 0, fmt.Sprintf("chain %d ends at row %d but its head says %d: rows were deleted from its end", h.Chain, l.Seq, h.Seq))
		case l.Seq == h.Seq && !hmac.Equal(h.MAC, l.MAC):
			c.broke(h.Chain, h.Seq, 0, fmt.Sprintf("chain %d's head does not match its last row %d: the head or the row was edited", h.Chain, h.Seq))
		}
	}
	return c.verdict
}

// ChainReader reads up to limit rows of chain after its row afterSeq, in
// chain order (a backend's AuditAfter).
type ChainReader func(ctx context.Context, chain int, afterSeq int64, limit int) ([]model.AuditEntry, error)

// EachChainRow calls fn for every row of chains 0 to n-1, each chain in
// Seq order, reading AuditBatch rows at a time with read, until fn
// returns false.
func EachChainRow(ctx context.Context, n int, read ChainReader, fn func(model.AuditEntry) bool) error {
	for chain := range n {
		var after int64
		for {
			batch, err := read(ctx, chain, after, AuditBatch)
			if err != nil {
				return err
			}
			for _, e := range batch {
				if !fn(e) {
					return nil
				}
			}
			if len(batch) < AuditBatch {
				break
			}
			after = batch[len(batch)-1].Seq
		}
	}
	return nil
}

// ChainSource is how VerifyChains reads a backend's audit log.
type ChainSource struct {
	// Heads reads the chains' heads (one per chain, 0 to n-1).
	Heads func(ctx context.Context) ([]model.AuditHead, error)
	// FirstUnchained is the id of the first row outside every chain: no
	// chain or place, a chain out of range or a place below 1 (found
	// false when there is none).
	FirstUnchained func(ctx context.Context) (id int64, found bool, err error)
	// Read reads a chain's rows after a place (AuditAfter).
	Read ChainReader
}

// VerifyChains checks every chain of src from its first row, the heads
// read before any row, and reports the first broken link.
func VerifyChains(ctx context.Context, seal Sealer, src ChainSource) (model.AuditVerdict, error) {
	heads, err := src.Heads(ctx)
	if err != nil {
		return model.AuditVerdict{}, fmt.Errorf("read audit chain heads: %w", err)
	}
	check := NewChainCheck(seal, heads)
	switch id, found, err := src.FirstUnchained(ctx); {
	case err != nil:
		return model.AuditVerdict{}, fmt.Errorf("read audit: %w", err)
	case found:
		check.Unchained(id)
	}
	if err := EachChainRow(ctx, len(heads), src.Read, check.Row); err != nil {
		return model.AuditVerdict{}, err
	}
	return check.Finish(), nil
}

// Relink links rows, in their order, after the chain position (seq, mac)
// with seal's key, giving each its place; set is called for each row
// whose MAC that changes (with the new place and MAC), to store it. It
// returns the chain's new head.
func (s Sealer) Relink(rows []model.AuditEntry, seq int64, mac []byte, set func(model.AuditEntry) error) (int64, []byte, error) {
	for _, e := range rows {
		old, oldSeq := e.MAC, e.Seq
		s.Link(&e, seq, mac)
		if !hmac.Equal(old, e.MAC) || oldSeq != e.Seq {
			if err := set(e); err != nil {
				return 0, nil, fmt.Errorf("link audit row %d: %w", e.ID, err)
			}
		}
		seq, mac = e.Seq, e.MAC
	}
	return seq, mac, nil
}
