package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func timeMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// errRefused rolls back a reservation refused by one of its counters.
var errRefused = errors.New("attempt refused")

// A reservation takes a slot with one conditional upsert per counter: the
// row is changed only when the counter is not blocked and has a slot left
// (or its window has passed), so concurrent callers — in this process or
// on other nodes sharing the database — can never take more than Limit.
// ?1 key, ?2 now (ms), ?3 window (ms), ?4 limit.
const reserveSQL = `INSERT INTO throttle (key, attempts, first_at, blocked_until, level) VALUES (?1, 1, ?2, 0, 0)
	ON CONFLICT(key) DO UPDATE SET
		level = CASE WHEN throttle.first_at + ?3 <= ?2 AND throttle.blocked_until + ?3 <= ?2 THEN 0 ELSE throttle.level END,
		attempts = CASE WHEN throttle.first_at + ?3 <= ?2 THEN 1 ELSE throttle.attempts + 1 END,
		first_at = CASE WHEN throttle.first_at + ?3 <= ?2 THEN ?2 ELSE throttle.first_at END
	WHERE throttle.blocked_until <= ?2 AND (throttle.first_at + ?3 <= ?2 OR throttle.attempts < ?4)
	RETURNING attempts, first_at, blocked_until, level`

// A failure blocks the counter when its slots are all taken and it is not
// blocked already: the one failure that crosses the limit raises the level,
// however many attempts of a burst fail after it. ?1 key, ?2 now, ?3 limit,
// ?4 block base, ?5 block max (ms).
const blockSQL = `UPDATE throttle SET level = level + 1, blocked_until = ?2 + min(?4 << min(level, 20), ?5),
		first_at = 0, attempts = 0
	WHERE key = ?1 AND attempts >= ?3 AND blocked_until <= ?2
	RETURNING attempts, first_at, blocked_until, level`

const selectThrottle = `SELECT attempts, first_at, blocked_until, level FROM throttle WHERE key = ?`

func scanThrottle(sc scanner) (model.Throttle, error) {
	var th model.Throttle
	var first, blocked int64
	if err := sc.Scan(&th.Attempts, &first, &blocked, &th.Level); err != nil {
		return model.Throttle{}, err
	}
	th.FirstAt, th.BlockedUntil = msTime(first), msTime(blocked)
	return th, nil
}

// ReserveAttempt takes one attempt slot on every counter of rules at now,
// all or none, in one commit. Take it before evaluating the attempt; then
// call RecordFailure, RecordSuccess or ReleaseAttempt.
func (s *Store) ReserveAttempt(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.Reservation, error) {
	res := model.Reservation{Counters: make([]model.Throttle, len(rules))}
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
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

// guardSQL finds a counter that would refuse a slot (the negation of
// reserveSQL's condition): a row means refused. ?1 key, ?2 now (ms), ?3
// window (ms), ?4 limit.
const guardSQL = `SELECT 1 FROM throttle WHERE key = ?1 AND NOT (blocked_until <= ?2 AND (first_at + ?3 <= ?2 OR attempts < ?4))`

// guard checks in tx, before anything is written, that every counter of
// rules has a slot to give at now: unchangedError{errRefused} when one has
// not. It is the check of an unreserved attempt's counters in the commit
// that ends its sign-in, and the first step of every reservation, so a
// refused right code and a refused reservation run the same statements
// and nothing else. The single writer runs the rest of the transaction
// before any other, so the answer still holds when it commits.
func guard(ctx context.Context, tx *wtx, now time.Time, rules []model.ThrottleRule) error {
	for _, r := range rules {
		var one int
		err := tx.QueryRowContext(ctx, guardSQL, r.Key, now.UnixMilli(), r.Window.Milliseconds(), r.Limit).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		return unchangedError{errRefused}
	}
	return nil
}

// reserve takes a slot on every counter of rules in tx, all or none, and
// returns the counters after it: unchangedError{errRefused} when a counter
// has none to give (guard; nothing changed).
func reserve(ctx context.Context, tx *wtx, now time.Time, rules []model.ThrottleRule) ([]model.Throttle, error) {
	if err := guard(ctx, tx, now, rules); err != nil {
		return nil, err
	}
	out := make([]model.Throttle, len(rules))
	for i, r := range rules {
		th, err := scanThrottle(tx.QueryRowContext(ctx, reserveSQL, r.Key, now.UnixMilli(), r.Window.Milliseconds(), r.Limit))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errRefused // not after the guard in one transaction; undone all the same
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
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var err error
		out, err = recordFailure(ctx, tx, now, rules)
		return err
	})
	if err != nil {
		return model.FailureResult{}, fmt.Errorf("record failure: %w", err)
	}
	return out, nil
}

// recordFailure runs blockSQL for rules in tx.
func recordFailure(ctx context.Context, tx *wtx, now time.Time, rules []model.ThrottleRule) (model.FailureResult, error) {
	out := model.FailureResult{Counters: make([]model.Throttle, len(rules)), Blocked: make([]bool, len(rules))}
	for i, r := range rules {
		th, err := scanThrottle(tx.QueryRowContext(ctx, blockSQL, r.Key, now.UnixMilli(), r.Limit,
			r.BlockBase.Milliseconds(), r.BlockMax.Milliseconds()))
		if errors.Is(err, sql.ErrNoRows) {
			// Slots left, or blocked already: the counter stands.
			th, err = scanThrottle(tx.QueryRowContext(ctx, selectThrottle, r.Key))
			if errors.Is(err, sql.ErrNoRows) {
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
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error { return recordSuccess(ctx, tx, rules) })
	if err != nil {
		return fmt.Errorf("record success: %w", err)
	}
	return nil
}

// successSQL clear a counter after a success: [0] lifts its block, [1]
// keeps a sticky one.
var successSQL = [2]string{`DELETE FROM throttle WHERE key = ?`,
	`UPDATE throttle SET attempts = 0, first_at = 0, level = 0 WHERE key = ?`}

// recordSuccess runs successSQL for rules inside tx.
func recordSuccess(ctx context.Context, tx *wtx, rules []model.ThrottleRule) error {
	for _, r := range rules {
		q := successSQL[0]
		if r.Sticky {
			q = successSQL[1]
		}
		if _, err := tx.ExecContext(ctx, q, r.Key); err != nil {
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
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		for i, r := range rules {
			if i >= len(taken.Counters) {
				break
			}
			if _, err := tx.ExecContext(ctx, `UPDATE throttle SET attempts = attempts - 1 WHERE key = ? AND attempts > 0 AND first_at = ?`,
				r.Key, timeMs(taken.Counters[i].FirstAt)); err != nil {
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
	_, err := s.exec(ctx, `DELETE FROM throttle WHERE blocked_until + ?2 <= ?1 AND first_at + ?2 <= ?1`,
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
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.query(ctx, `SELECT key, attempts, first_at, blocked_until, level FROM throttle WHERE key IN (?`+
		strings.Repeat(",?", len(keys)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read throttle: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var th model.Throttle
		var first, blocked int64
		if err := rows.Scan(&key, &th.Attempts, &first, &blocked, &th.Level); err != nil {
			return nil, fmt.Errorf("read throttle: %w", err)
		}
		th.FirstAt, th.BlockedUntil = msTime(first), msTime(blocked)
		for i, k := range keys {
			if k == key {
				out[i] = th
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read throttle: %w", err)
	}
	return out, nil
}
