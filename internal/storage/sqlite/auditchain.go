package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// auditCols are the columns scanAudit reads; a row outside every chain
// reads as chain -1.
const auditCols = `id, at, actor, action, subject, result, source_ip, detail, COALESCE(chain, -1), COALESCE(seq, 0), mac`

// scanAudit reads one row of auditCols.
func scanAudit(r scanner) (model.AuditEntry, error) {
	var e model.AuditEntry
	var at int64
	err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail, &e.Chain, &e.Seq, &e.MAC)
	e.At = time.UnixMilli(at).UTC()
	return e, err
}

// AuditChains is how many hash chains the audit log has: one, numbered 0.
func (s *Store) AuditChains() int { return 1 }

// AuditAfter returns up to limit rows of chain after its row afterSeq,
// in chain order (which is commit order).
func (s *Store) AuditAfter(ctx context.Context, chain int, afterSeq int64, limit int) ([]model.AuditEntry, error) {
	if limit <= 0 || limit > storage.AuditBatch {
		limit = storage.AuditBatch
	}
	rows, err := s.query(ctx, `SELECT `+auditCols+` FROM audit WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`, chain, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit chain %d: %w", chain, err)
	}
	defer rows.Close()
	var out []model.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit chain %d: %w", chain, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit chain %d: %w", chain, err)
	}
	return out, nil
}

// VerifyAudit checks the hash chain from its first row to its head and
// reports the first broken link: a row edited, deleted, inserted or moved
// in the database file.
func (s *Store) VerifyAudit(ctx context.Context) (model.AuditVerdict, error) {
	return storage.VerifyChains(ctx, s.seal, storage.ChainSource{
		Heads: func(ctx context.Context) ([]model.AuditHead, error) {
			h := model.AuditHead{Chain: 0}
			err := s.queryRow(ctx, auditHead).Scan(&h.Seq, &h.MAC)
			return []model.AuditHead{h}, err
		},
		FirstUnchained: func(ctx context.Context) (int64, bool, error) {
			return firstUnchained(s.queryRow(ctx, firstUnchainedSQL))
		},
		Read: s.AuditAfter,
	})
}

// firstUnchainedSQL finds the first row outside the chain.
const firstUnchainedSQL = `SELECT id FROM audit WHERE chain IS NULL OR seq IS NULL OR chain <> 0 OR seq < 1 ORDER BY id LIMIT 1`

// firstUnchained reads the answer of firstUnchainedSQL.
func firstUnchained(r scanner) (int64, bool, error) {
	var id int64
	switch err := r.Scan(&id); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return id, true, nil
}

// linkLegacyAudit links the rows written before the chain existed (up to
// the head's legacy_upto), in id order, as the chain's first rows: once,
// when a store first opens after migration 11. Only into an empty chain:
// a legacy_upto set later (by someone editing the database) links
// nothing, and the rows it names stay outside the chain, for verify to
// report.
func (s *Store) linkLegacyAudit(ctx context.Context) error {
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var upto, seq int64
		var mac []byte
		if err := tx.QueryRowContext(ctx, `SELECT legacy_upto, seq, mac FROM audit_head WHERE chain = 0`).Scan(&upto, &seq, &mac); err != nil {
			return fmt.Errorf("audit chain head: %w", err)
		}
		if upto == 0 {
			return nil
		}
		var chained bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit WHERE chain IS NOT NULL)`).Scan(&chained); err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		if seq != 0 || chained {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+auditCols+` FROM audit WHERE chain IS NULL AND id <= ? ORDER BY id`, upto)
		if err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		var legacy []model.AuditEntry
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read audit: %w", err)
			}
			legacy = append(legacy, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		for i := range legacy {
			legacy[i].Chain = 0
		}
		seq, mac, err = s.seal.Relink(legacy, seq, mac, func(e model.AuditEntry) error {
			_, err := tx.ExecContext(ctx, `UPDATE audit SET chain = 0, seq = ?, mac = ? WHERE id = ?`, e.Seq, e.MAC, e.ID)
			return err
		})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, mac = ?, legacy_upto = 0 WHERE chain = 0`, seq, mac)
		return err
	})
}
