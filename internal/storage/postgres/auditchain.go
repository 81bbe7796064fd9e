package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// auditChains is how many hash chains the audit log has (migration 11
// made their heads). An append locks its chain's head until commit, so
// one chain would make every node's sign-ins commit one at a time.
const auditChains = 8

// auditCols are the columns scanAudit reads; a row outside every chain
// reads as chain -1.
const auditCols = `id, at, actor, action, subject, result, source_ip, detail, COALESCE(chain, -1), COALESCE(seq, 0), mac`

// scanAudit reads one row of auditCols.
func scanAudit(r pgx.Row) (model.AuditEntry, error) {
	var e model.AuditEntry
	var at int64
	err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail, &e.Chain, &e.Seq, &e.MAC)
	e.At = utc(at)
	return e, err
}

const (
	// takeAuditHead moves chain $1's head on by $2 rows and returns the
	// place and MAC it had, locking it until commit.
	takeAuditHead = `UPDATE audit_head SET seq = seq + $2 WHERE chain = $1 RETURNING seq - $2, mac`
	// insertAudit appends the rows given as arrays and sets their chain's
	// head MAC ($11) (chain $8[1]).
	insertAudit = `WITH a AS (INSERT INTO audit (at, actor, action, subject, result, source_ip, detail, chain, seq, mac)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[], $10::bytea[]))
		UPDATE audit_head SET mac = $11 WHERE chain = $12`
)

// appendAudit appends e to the audit log in tx (appendAudits).
func (s *Store) appendAudit(ctx context.Context, tx pgx.Tx, e model.AuditEntry) error {
	return s.appendAudits(ctx, tx, []model.AuditEntry{e})
}

// appendAudits links es, in order, to the head of a chain picked at
// random and appends them, in tx: two statements however many rows. The
// fields are made storable text first: the MAC covers what a row holds.
func (s *Store) appendAudits(ctx context.Context, tx pgx.Tx, es []model.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	chain := rand.IntN(auditChains)
	var seq int64
	var mac []byte
	if err := tx.QueryRow(ctx, takeAuditHead, chain, len(es)).Scan(&seq, &mac); err != nil {
		return fmt.Errorf("audit chain head: %w", err)
	}
	n := len(es)
	at, seqs, chains := make([]int64, n), make([]int64, n), make([]int32, n)
	actor, action, subject, result, ip, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	macs := make([][]byte, n)
	now := s.now()
	for i, e := range es {
		if e.At.IsZero() {
			e.At = now
		}
		e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail = text(e.Actor), text(e.Action), text(e.Subject), text(e.Result), text(e.SourceIP), text(e.Detail)
		e.Chain = chain
		s.seal.Link(&e, seq, mac)
		seq, mac = e.Seq, e.MAC
		at[i], actor[i], action[i], subject[i], result[i], ip[i], detail[i] = e.At.UnixMilli(), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail
		chains[i], seqs[i], macs[i] = int32(chain), e.Seq, e.MAC
	}
	_, err := tx.Exec(ctx, insertAudit, at, actor, action, subject, result, ip, detail, chains, seqs, macs, mac, chain)
	return err
}

// AuditChains is how many hash chains the audit log has.
func (s *Store) AuditChains() int { return auditChains }

// AuditAfter returns up to limit rows of chain after its row afterSeq,
// in chain order (which is commit order: a chain's head is locked from
// an append until its commit).
func (s *Store) AuditAfter(ctx context.Context, chain int, afterSeq int64, limit int) ([]model.AuditEntry, error) {
	if limit <= 0 || limit > storage.AuditBatch {
		limit = storage.AuditBatch
	}
	var out []model.AuditEntry
	err := s.query(ctx, `SELECT `+auditCols+` FROM audit WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		args(chain, afterSeq, limit), func(r pgx.Rows) error {
			e, err := scanAudit(r)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read audit chain %d: %w", chain, err)
	}
	return out, nil
}

// VerifyAudit checks every hash chain from its first row to its head and
// reports the first broken link: a row edited, deleted, inserted or moved
// in the database.
func (s *Store) VerifyAudit(ctx context.Context) (model.AuditVerdict, error) {
	return storage.VerifyChains(ctx, s.seal, storage.ChainSource{
		Heads: func(ctx context.Context) ([]model.AuditHead, error) {
			var heads []model.AuditHead
			err := s.query(ctx, `SELECT chain, seq, mac FROM audit_head ORDER BY chain`, nil, func(r pgx.Rows) error {
				var h model.AuditHead
				if err := r.Scan(&h.Chain, &h.Seq, &h.MAC); err != nil {
					return err
				}
				heads = append(heads, h)
				return nil
			})
			return heads, err
		},
		FirstUnchained: func(ctx context.Context) (int64, bool, error) {
			var id int64
			err := s.queryRow(ctx, `SELECT id FROM audit WHERE chain IS NULL OR seq IS NULL OR chain NOT BETWEEN 0 AND $1 OR seq < 1 ORDER BY id LIMIT 1`,
				args(auditChains-1), &id)
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, false, nil
			}
			return id, err == nil, err
		},
		Read: s.AuditAfter,
	})
}

// linkLegacyAudit links the rows written before the chains existed (up
// to chain 0's legacy_upto), in id order, as chain 0's first rows: once,
// by the first node to open the database after migration 11, under the
// head's lock (a node opening meanwhile waits, then finds nothing left).
// Only into empty chains: a legacy_upto set later (by someone editing the
// database) links nothing.
func (s *Store) linkLegacyAudit(ctx context.Context) error {
	// Read first without a lock: nothing to do is the rule, and a node
	// may open a read-only database (a standby).
	var upto int64
	if err := s.queryRow(ctx, `SELECT legacy_upto FROM audit_head WHERE chain = 0`, nil, &upto); err != nil {
		return fmt.Errorf("audit chain head: %w", err)
	}
	if upto == 0 {
		return nil
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var upto, seq int64
		var mac []byte
		if err := tx.QueryRow(ctx, `SELECT legacy_upto, seq, mac FROM audit_head WHERE chain = 0 FOR UPDATE`).Scan(&upto, &seq, &mac); err != nil {
			return fmt.Errorf("audit chain head: %w", err)
		}
		if upto == 0 {
			return nil
		}
		// Only into empty chains (see the SQLite store's twin).
		var chained bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit WHERE chain IS NOT NULL) OR EXISTS (SELECT 1 FROM audit_head WHERE seq <> 0)`).Scan(&chained); err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		if chained {
			return nil
		}
		var legacy []model.AuditEntry
		err := func() error {
			rows, err := tx.Query(ctx, `SELECT `+auditCols+` FROM audit WHERE chain IS NULL AND id <= $1 ORDER BY id`, upto)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				e, err := scanAudit(rows)
				if err != nil {
					return err
				}
				legacy = append(legacy, e)
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		for i := range legacy {
			legacy[i].Chain = 0
		}
		seq, mac, err = s.seal.Relink(legacy, seq, mac, func(e model.AuditEntry) error {
			_, err := tx.Exec(ctx, `UPDATE audit SET chain = 0, seq = $1, mac = $2 WHERE id = $3`, e.Seq, e.MAC, e.ID)
			return err
		})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE audit_head SET seq = $1, mac = $2, legacy_upto = 0 WHERE chain = 0`, seq, mac)
		return err
	})
}

// checkSourceChain checks the hash chain of a SQLite camotp database being
// imported (read in src) with this store's master key: a log that was
// tampered with is not carried over as if it held.
func (s *Store) checkSourceChain(ctx context.Context, src *sql.Tx) error {
	v, err := storage.VerifyChains(ctx, s.seal, storage.ChainSource{
		Heads: func(ctx context.Context) ([]model.AuditHead, error) {
			h := model.AuditHead{Chain: 0}
			err := src.QueryRowContext(ctx, `SELECT seq, mac FROM audit_head WHERE chain = 0`).Scan(&h.Seq, &h.MAC)
			return []model.AuditHead{h}, err
		},
		FirstUnchained: func(ctx context.Context) (int64, bool, error) {
			var id int64
			err := src.QueryRowContext(ctx, `SELECT id FROM audit WHERE chain IS NULL OR seq IS NULL OR chain <> 0 OR seq < 1 ORDER BY id LIMIT 1`).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return 0, false, nil
			}
			return id, err == nil, err
		},
		Read: func(ctx context.Context, chain int, after int64, limit int) ([]model.AuditEntry, error) {
			rows, err := src.QueryContext(ctx, `SELECT `+auditCols+` FROM audit WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`, chain, after, limit)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []model.AuditEntry
			for rows.Next() {
				var e model.AuditEntry
				var at int64
				if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail, &e.Chain, &e.Seq, &e.MAC); err != nil {
					return nil, err
				}
				e.At = utc(at)
				out = append(out, e)
			}
			return out, rows.Err()
		},
	})
	if err != nil {
		return fmt.Errorf("check the SQLite audit log: %w", err)
	}
	if b := v.Broken; b != nil {
		return fmt.Errorf("the SQLite audit log does not hold (%s): camotp migrate carries over only a log that holds; keep the file as evidence", b.Reason)
	}
	return nil
}

// relinkImported links chain 0 again as it was copied, and sets its head:
// text PostgreSQL cannot hold was replaced on the way (as this backend's
// audit log does), which changes the rows' links from there on. The
// source chain was checked first (checkSourceChain).
func (s *Store) relinkImported(ctx context.Context, tx pgx.Tx) error {
	var rows []model.AuditEntry
	err := func() error {
		r, err := tx.Query(ctx, `SELECT `+auditCols+` FROM audit WHERE chain = 0 ORDER BY seq`)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			e, err := scanAudit(r)
			if err != nil {
				return err
			}
			rows = append(rows, e)
		}
		return r.Err()
	}()
	if err != nil {
		return fmt.Errorf("read the copied audit log: %w", err)
	}
	seq, mac, err := s.seal.Relink(rows, 0, nil, func(e model.AuditEntry) error {
		_, err := tx.Exec(ctx, `UPDATE audit SET mac = $1 WHERE id = $2`, e.MAC, e.ID)
		return err
	})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE audit_head SET seq = $1, mac = $2, legacy_upto = 0 WHERE chain = 0`, seq, mac)
	return err
}
