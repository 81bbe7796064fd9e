package storage

import (
	"context"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// What both backends do the same way around their own queries.

// AuditBatch is how many rows EachAudit reads per query.
const AuditBatch = 500

// AuditPager is a backend's keyset query of one page of audit rows,
// newest first.
type AuditPager func(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error)

// PageAudit is one page of q read by page, its size bounded
// (model.DefaultPageSize when out of range).
func PageAudit(ctx context.Context, q model.AuditQuery, page AuditPager) ([]model.AuditEntry, error) {
	if q.Limit <= 0 || q.Limit > model.MaxPageSize {
		q.Limit = model.DefaultPageSize
	}
	return page(ctx, q)
}

// EachAudit calls fn for every row f selects, newest first, reading
// AuditBatch rows at a time with page: each query is done before fn sees
// its rows, so a slow reader holds no connection or snapshot.
func EachAudit(ctx context.Context, f model.AuditFilter, page AuditPager, fn func(model.AuditEntry) error) error {
	q := model.AuditQuery{AuditFilter: f, Limit: AuditBatch}
	for {
		batch, err := page(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(batch) < AuditBatch {
			return nil
		}
		q.Before = batch[len(batch)-1].ID
	}
}

// ThrottleReader reads counters by key (Throttles.GetThrottles).
type ThrottleReader func(ctx context.Context, keys ...string) ([]model.Throttle, error)

// Standing reads the counters of rules with get as they stand after a
// refusal, and how long the caller must wait (model.RetryAfter).
func Standing(ctx context.Context, get ThrottleReader, now time.Time, rules []model.ThrottleRule) ([]model.Throttle, time.Duration, error) {
	keys := make([]string, len(rules))
	for i, r := range rules {
		keys[i] = r.Key
	}
	ths, err := get(ctx, keys...)
	if err != nil {
		return nil, 0, err
	}
	return ths, model.RetryAfter(now, rules, ths), nil
}

// Throttled is the *ThrottledError of a refused unreserved attempt: the
// counters are read after the refusal, as a refused reservation reads
// them, so a refused success and a refused failure take the same steps.
func Throttled(ctx context.Context, get ThrottleReader, now time.Time, rules []model.ThrottleRule) error {
	_, wait, err := Standing(ctx, get, now, rules)
	if err != nil {
		return err
	}
	return &ThrottledError{RetryAfter: wait}
}
