package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// errRefused rolls back a reservation refused by one of its counters.
var errRefused = errors.New("attempt refused")

// A reservation takes a slot with one conditional upsert per counter: the
// row is changed only when the counter is not blocked and has a slot left
// (or its window has passed), so concurrent callers — on this node or
// others — can never take more than Limit. PostgreSQL locks the row and
// evaluates the WHERE on its latest version. $1 key (BYTEA: keys hold NUL
// and raw digest bytes), $2 now (ms), $3 window (ms), $4 limit.
const reserveSQL = `INSERT INTO throttle AS t (key, attempts, first_at, blocked_until, level) VALUES ($1, 1, $2::bigint, 0, 0)
	ON CONFLICT (key) DO UPDATE SET
		level = CASE WHEN t.first_at + $3::bigint <= $2::bigint AND t.blocked_until + $3::bigint <= $2::bigint THEN 0 ELSE t.level END,
		attempts = CASE WHEN t.first_at + $3::bigint <= $2::bigint THEN 1 ELSE t.attempts + 1 END,
		first_at = CASE WHEN t.first_at + $3::bigint <= $2::bigint THEN $2::bigint ELSE t.first_at END
	WHERE t.blocked_until <= $2::bigint AND (t.first_at + $3::bigint <= $2::bigint OR t.attempts < $4::integer)
	RETURNING attempts, first_at, blocked_until, level`

// A failure blocks the counter when its slots are all taken and it is not
// blocked already: the one failure that crosses the limit raises the level,
// however many attempts of a burst fail after it. $1 key, $2 now, $3 limit,
// $4 block base, $5 block max (ms).
const blockSQL = `UPDATE throttle SET level = level + 1,
		blocked_until = $2::bigint + least($4::bigint << least(level, 20), $5::bigint),
		first_at = 0, attempts = 0
	WHERE key = $1 AND attempts >= $3::integer AND blocked_until <= $2::bigint
	RETURNING attempts, first_at, blocked_until, level`

const selectThrottle = `SELECT attempts, first_at, blocked_until, level FROM throttle WHERE key = $1`

func scanThrottle(row pgx.Row) (model.Throttle, error) {
	var th model.Throttle
	var first, blocked int64
	if err := row.Scan(&th.Attempts, &first, &blocked, &th.Level); err != nil {
		return model.Throttle{}, err
	}
	th.FirstAt, th.BlockedUntil = msTime(first), msTime(blocked)
	return th, nil
}

// ReserveAttempt takes one attempt slot on every counter of rules at now,
// all or none, in one transaction (rolled back when a counter refuses).
// Take it before evaluating the attempt; then call RecordFailure,
// RecordSuccess or ReleaseAttempt.
func (s *Store) ReserveAttempt(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.Reservation, error) {
	res := model.Reservation{Counters: make([]model.Throttle, len(rules))}
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		res.Counters, err = reserve(ctx, tx, now, rules)
		return err
	})
	if err == nil {
		res.Granted = true
		return res, nil
	}
	if !errors.Is(err, errRefused) {
		return model.Reservation{}, fmt.Errorf("reserve attempt: %w", err)
	}
	// Refused: report the counters as they stand and the longest wait.
	if res.Counters, res.RetryAfter, err = storage.Standing(ctx, s.GetThrottles, now, rules); err != nil {
		return model.Reservation{}, err
	}
	return res, nil
}

// reserve takes a slot on every counter of rules inside tx (reserveSQL)
// and returns the counters after it; errRefused when one refuses (the
// rollback undoes the slots taken before). Each counter's row stays locked
// to the end of the transaction, refused or not (ON CONFLICT DO UPDATE
// locks the row it finds). It is also the check of an unreserved
// attempt's counters in the transaction that ends its sign-in, so a
// refused right code and a refused reservation run the same statement.
func reserve(ctx context.Context, tx pgx.Tx, now time.Time, rules []model.ThrottleRule) ([]model.Throttle, error) {
	out := make([]model.Throttle, len(rules))
	for i, r := range rules {
		th, err := scanThrottle(tx.QueryRow(ctx, reserveSQL, []byte(r.Key), now.UnixMilli(), r.Window.Milliseconds(), r.Limit))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errRefused
		}
		if err != nil {
			return nil, err
		}
		out[i] = th
	}
	return out, nil
}

// RecordFailure counts the reserved attempt on every counter of rules as
// failed: a counter whose slots are all taken is blocked.
func (s *Store) RecordFailure(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.FailureResult, error) {
	var out model.FailureResult
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = recordFailure(ctx, tx, now, rules)
		return err
	})
	if err != nil {
		return model.FailureResult{}, fmt.Errorf("record failure: %w", err)
	}
	return out, nil
}

// recordFailure runs blockSQL for rules inside tx.
func recordFailure(ctx context.Context, tx pgx.Tx, now time.Time, rules []model.ThrottleRule) (model.FailureResult, error) {
	out := model.FailureResult{Counters: make([]model.Throttle, len(rules)), Blocked: make([]bool, len(rules))}
	for i, r := range rules {
		th, err := scanThrottle(tx.QueryRow(ctx, blockSQL, []byte(r.Key), now.UnixMilli(), r.Limit,
			r.BlockBase.Milliseconds(), r.BlockMax.Milliseconds()))
		if errors.Is(err, pgx.ErrNoRows) {
			// Slots left, or blocked already: the counter stands.
			th, err = scanThrottle(tx.QueryRow(ctx, selectThrottle, []byte(r.Key)))
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil // cleared meanwhile by a success
			}
		} else {
			out.Blocked[i] = err == nil
		}
		if err != nil {
			return model.FailureResult{}, err
		}
		out.Counters[i] = th
	}
	return out, nil
}

// RecordSuccess clears the counters of rules after a successful attempt:
// attempts and level start over; a block that is not Sticky is lifted.
func (s *Store) RecordSuccess(ctx context.Context, rules ...model.ThrottleRule) error {
	if err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return recordSuccess(ctx, tx, rules) }); err != nil {
		return fmt.Errorf("record success: %w", err)
	}
	return nil
}

// recordSuccess clears the counters of rules inside tx.
func recordSuccess(ctx context.Context, tx pgx.Tx, rules []model.ThrottleRule) error {
	for _, r := range rules {
		q := `DELETE FROM throttle WHERE key = $1`
		if r.Sticky {
			q = `UPDATE throttle SET attempts = 0, first_at = 0, level = 0 WHERE key = $1`
		}
		if _, err := tx.Exec(ctx, q, []byte(r.Key)); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseAttempt gives back a slot taken by ReserveAttempt (taken is its
// Reservation) whose attempt was never evaluated (an error before the
// check). Only a slot of the window it was taken in is given back: a
// window that has started over since owes nothing.
func (s *Store) ReleaseAttempt(ctx context.Context, taken model.Reservation, rules ...model.ThrottleRule) error {
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		for i, r := range rules {
			if i >= len(taken.Counters) {
				break
			}
			if _, err := tx.Exec(ctx, `UPDATE throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0 AND first_at = $2`,
				[]byte(r.Key), ms(taken.Counters[i].FirstAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release attempt: %w", err)
	}
	return nil
}

// PurgeThrottles deletes counters with nothing left to remember at now: no
// block in force and no attempt within maxWindow.
func (s *Store) PurgeThrottles(ctx context.Context, now time.Time, maxWindow time.Duration) error {
	_, err := s.exec(ctx, `DELETE FROM throttle WHERE blocked_until + $2::bigint <= $1::bigint AND first_at + $2::bigint <= $1::bigint`,
		now.UnixMilli(), maxWindow.Milliseconds())
	if err != nil {
		return fmt.Errorf("purge throttles: %w", err)
	}
	return nil
}

// GetThrottles reads counters in one query, in the order of keys (zero
// values for keys with none).
func (s *Store) GetThrottles(ctx context.Context, keys ...string) ([]model.Throttle, error) {
	out := make([]model.Throttle, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	bkeys := make([][]byte, len(keys))
	for i, k := range keys {
		bkeys[i] = []byte(k)
	}
	err := s.query(ctx, `SELECT key, attempts, first_at, blocked_until, level FROM throttle WHERE key = ANY($1)`, args(bkeys), func(r pgx.Rows) error {
		var key []byte
		var th model.Throttle
		var first, blocked int64
		if err := r.Scan(&key, &th.Attempts, &first, &blocked, &th.Level); err != nil {
			return err
		}
		th.FirstAt, th.BlockedUntil = msTime(first), msTime(blocked)
		for i, k := range keys {
			if k == string(key) {
				out[i] = th
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read throttle: %w", err)
	}
	return out, nil
}
