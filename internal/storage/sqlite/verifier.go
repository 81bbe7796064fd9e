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

// OTPState returns the record of subject; found is false when none exists.
func (s *Store) OTPState(ctx context.Context, subject string) (st model.OTPState, found bool, err error) {
	var off, rstep sql.NullInt64
	err = s.queryRow(ctx, `SELECT seed_version, last_step, drift, resync_offset, resync_step FROM otp_state WHERE subject = ?`, subject).
		Scan(&st.SeedVersion, &st.LastStep, &st.Drift, &off, &rstep)
	if errors.Is(err, sql.ErrNoRows) {
		return model.OTPState{}, false, nil
	}
	if err != nil {
		return model.OTPState{}, false, fmt.Errorf("read otp state: %w", err)
	}
	if off.Valid {
		o := off.Int64
		st.ResyncOffset = &o
		st.ResyncStep = rstep.Int64
	}
	return st, true, nil
}

// AcceptStep durably records that step was accepted for subject under
// seedVersion, with the drift learnt. It returns false when a step at or
// after this one was already accepted for the same seed (a concurrent use
// of the same code lost the race): the caller must treat it as a replay.
func (s *Store) AcceptStep(ctx context.Context, subject string, seedVersion uint64, step, drift int64) (bool, error) {
	res, err := s.exec(ctx, acceptStep, subject, seedVersion, step, drift, s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("record accepted step: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record accepted step: %w", err)
	}
	return n == 1, nil
}

// acceptStep is the replay rule: the record moves forward only (a newer
// seed, or a later step of the same seed), so of concurrent uses of one
// step exactly one changes the row. ?1 subject, ?2 seed version, ?3 step,
// ?4 drift, ?5 now (ms: when a code of the source was last accepted).
const acceptStep = `INSERT INTO otp_state (subject, seed_version, last_step, drift, used_at) VALUES (?,?,?,?,?)
	ON CONFLICT(subject) DO UPDATE SET seed_version = excluded.seed_version, last_step = excluded.last_step,
		drift = excluded.drift, resync_offset = NULL, resync_step = NULL, used_at = excluded.used_at
	WHERE otp_state.seed_version < excluded.seed_version
	   OR (otp_state.seed_version = excluded.seed_version AND otp_state.last_step < excluded.last_step)`

// use runs acceptStep for u in tx: ErrStepUsed, having changed nothing,
// when the step was used already.
func use(ctx context.Context, tx *wtx, u *model.StepUse, now time.Time) error {
	res, err := tx.ExecContext(ctx, acceptStep, u.Subject, u.SeedVersion, u.Step, u.Drift, now.UnixMilli())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return unchangedError{storage.ErrStepUsed}
	}
	return nil
}

// SetResync records a code found far outside the window at offset (steps
// from the verifier's clock) and step, awaiting confirmation by a later code.
// A candidate of an older seed version than the record's is dropped: it
// must not bring the old version back (the new seed's accepted step would
// be accepted again).
func (s *Store) SetResync(ctx context.Context, subject string, seedVersion uint64, offset, step int64) error {
	_, err := s.exec(ctx, `INSERT INTO otp_state (subject, seed_version, last_step, drift, resync_offset, resync_step)
		VALUES (?, ?, -1, 0, ?, ?)
		ON CONFLICT(subject) DO UPDATE SET
			last_step = CASE WHEN otp_state.seed_version = excluded.seed_version THEN otp_state.last_step ELSE -1 END,
			drift = CASE WHEN otp_state.seed_version = excluded.seed_version THEN otp_state.drift ELSE 0 END,
			seed_version = excluded.seed_version, resync_offset = excluded.resync_offset, resync_step = excluded.resync_step
		WHERE otp_state.seed_version <= excluded.seed_version`,
		subject, seedVersion, offset, step)
	if err != nil {
		return fmt.Errorf("record resync candidate: %w", err)
	}
	return nil
}

// CreateToken makes a random token of kind for username, valid for ttl, and
// returns it; only its hash is stored.
func (s *Store) CreateToken(ctx context.Context, kind, username, method, ip string, ttl time.Duration) (string, error) {
	raw, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	_, err = s.exec(ctx, insertToken, storage.TokenHash(raw), kind, username, method, ip, now.UnixMilli(), now.Add(ttl).UnixMilli())
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return raw, nil
}

const (
	insertToken = `INSERT INTO tokens (hash, kind, username, method, ip, created_at, expires_at) VALUES (?,?,?,?,?,?,?)`
	deleteToken = `DELETE FROM tokens WHERE hash = ?`
	// endToken deletes a live token: the one statement that decides which
	// of concurrent consumptions of one token wins. ?1 hash, ?2 now (ms).
	endToken = `DELETE FROM tokens WHERE hash = ?1 AND expires_at > ?2`
)

// end runs q (endToken, or exchangeToken with its arguments after the
// old token's) in tx: ErrNotFound, having changed nothing, when old is not
// a live token (unknown, expired, or ended by a concurrent exchange).
func end(ctx context.Context, tx *wtx, q, old string, now time.Time, args ...any) error {
	res, err := tx.ExecContext(ctx, q, append([]any{storage.TokenHash(old), now.UnixMilli()}, args...)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return unchangedError{fmt.Errorf("token: %w", storage.ErrNotFound)}
	}
	return nil
}

// exchangeToken ends a live token and makes its row the new token in one
// statement: ?1 old hash, ?2 now (ms), then the new token's hash, kind,
// username, method, ip and expiry (ms).
const exchangeToken = `UPDATE tokens SET hash = ?3, kind = ?4, username = ?5, method = ?6, ip = ?7, created_at = ?2, expires_at = ?8
	WHERE hash = ?1 AND expires_at > ?2`

// pass is the commit of a passed sign-in step, in tx: for an unreserved
// attempt the check that its counters have a slot to give (guard, as a
// reservation starts; nothing changed when refused), the replay record u
// (when not nil), the end of the token old by q (end), the audit row e and
// the success on the counters. A refusal after the first change is no
// longer "unchanged": the group runs again with savepoints.
func (s *Store) pass(ctx context.Context, tx *wtx, q, old string, now time.Time, u *model.StepUse, e model.AuditEntry, settle model.Settlement, args ...any) error {
	if settle.Unreserved {
		if err := guard(ctx, tx, settle.At, settle.Rules); err != nil {
			return err
		}
	}
	if u != nil {
		if err := use(ctx, tx, u, now); err != nil {
			return err
		}
		if u.Rotation != "" {
			if err := s.proveRotation(ctx, tx, u.Rotation, u.SeedVersion, now); err != nil {
				return err // after the replay record: changed
			}
		}
	}
	if err := end(ctx, tx, q, old, now, args...); err != nil {
		return changedAfter(u != nil, err) // the replay record was taken
	}
	if err := s.appendAudit(ctx, tx, e); err != nil {
		return err
	}
	return recordSuccess(ctx, tx, settle.Rules)
}

// changedAfter is err of a statement that changed nothing, after earlier
// ones of its transaction changed something (changed): no longer
// "unchanged", so the group undoes them. Any other error stays as it is.
func changedAfter(changed bool, err error) error {
	if u := (unchangedError{}); changed && errors.As(err, &u) {
		return u.error
	}
	return err
}

// passed maps the error of a pass commit: a refused unreserved attempt
// becomes a *storage.ThrottledError with its wait.
func (s *Store) passed(ctx context.Context, what string, settle model.Settlement, err error) error {
	if errors.Is(err, errRefused) {
		return storage.Throttled(ctx, s.GetThrottles, settle.At, settle.Rules)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ExchangeToken takes the replay record u (when not nil), ends the token
// old and makes a token of kind for username valid for ttl in its place,
// appends e to the audit log and settles the attempt's throttle counters
// as a success, all in one commit: a passed code is used up, a pending
// sign-in becomes a session, the log says so and the counters start over,
// or nothing happens. An unreserved attempt (settle.Unreserved) is checked
// against its counters first: *storage.ThrottledError when they would
// have refused it. ErrStepUsed when u's step was used already; a token is
// exchanged once: ErrNotFound when old is not live (unknown, expired or
// exchanged).
func (s *Store) ExchangeToken(ctx context.Context, old, kind, username, method, ip string, ttl time.Duration, u *model.StepUse, e model.AuditEntry, settle model.Settlement) (string, error) {
	raw, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		return s.pass(ctx, tx, exchangeToken, old, now, u, e, settle,
			storage.TokenHash(raw), kind, username, method, ip, now.Add(ttl).UnixMilli())
	})
	if err != nil {
		return "", s.passed(ctx, "exchange token", settle, err)
	}
	return raw, nil
}

// ConsumeToken is ExchangeToken ending the token old without a new one: a
// passed sign-in step that starts no session (a front door that keeps its
// own, such as a RADIUS NAS).
func (s *Store) ConsumeToken(ctx context.Context, old string, u *model.StepUse, e model.AuditEntry, settle model.Settlement) error {
	now := s.now()
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		return s.pass(ctx, tx, endToken, old, now, u, e, settle)
	})
	if err != nil {
		return s.passed(ctx, "consume token", settle, err)
	}
	return nil
}

// LookupToken returns the unexpired token of kind; ErrNotFound otherwise.
func (s *Store) LookupToken(ctx context.Context, kind, raw string) (model.Token, error) {
	if raw == "" || len(raw) > 128 {
		return model.Token{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	var t model.Token
	var created, exp int64
	err := s.queryRow(ctx, `SELECT kind, username, method, ip, created_at, expires_at FROM tokens WHERE hash = ? AND kind = ? AND expires_at > ?`,
		storage.TokenHash(raw), kind, s.now().UnixMilli()).Scan(&t.Kind, &t.Username, &t.Method, &t.IP, &created, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Token{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.Token{}, fmt.Errorf("read token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(created), time.UnixMilli(exp)
	return t, nil
}

// PendingCheck reads in one query the live pending token raw and what
// checking a code of its user's camera needs (CameraCheck; nil when no
// camera is assigned). ErrNotFound when raw is not a live pending token.
func (s *Store) PendingCheck(ctx context.Context, raw string) (model.PendingCheck, error) {
	if raw == "" || len(raw) > 128 {
		return model.PendingCheck{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	var pc model.PendingCheck
	var created, exp int64
	var cs cameraCheckScan
	var k storage.ClockScan
	t := &pc.Token
	err := s.queryRow(ctx, `SELECT t.kind, t.username, t.method, t.ip, t.created_at, t.expires_at, `+cameraCheckCols+`, `+storage.ClockCols+`
		FROM tokens t LEFT JOIN cameras c ON c.assigned_user = t.username LEFT JOIN otp_state o ON o.subject = ?1 || c.serial
		LEFT JOIN camera_clock k ON k.serial = c.serial
		WHERE t.hash = ?2 AND t.kind = ?3 AND t.expires_at > ?4`,
		model.CameraSubjectPrefix, storage.TokenHash(raw), model.TokenPending, s.now().UnixMilli()).
		Scan(append(append([]any{&t.Kind, &t.Username, &t.Method, &t.IP, &created, &exp}, cs.dest()...), k.Dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return model.PendingCheck{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.PendingCheck{}, fmt.Errorf("read token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(created), time.UnixMilli(exp)
	if pc.Camera, err = cs.check(s.seal); err != nil {
		return model.PendingCheck{}, fmt.Errorf("camera of %s: %w", t.Username, err)
	}
	if pc.Camera != nil {
		pc.Camera.Clock = k.Clock()
	}
	return pc, nil
}

// UserTokens lists username's live tokens, newest first (their hashes
// are not part of a Token): the sessions, pending sign-ins and trusted
// browsers an admin sees.
func (s *Store) UserTokens(ctx context.Context, username string) ([]model.Token, error) {
	rows, err := s.query(ctx, `SELECT kind, username, method, ip, created_at, expires_at FROM tokens
		WHERE username = ? AND expires_at > ? ORDER BY created_at DESC`, username, s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []model.Token
	for rows.Next() {
		var t model.Token
		var created, exp int64
		if err := rows.Scan(&t.Kind, &t.Username, &t.Method, &t.IP, &created, &exp); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.CreatedAt, t.ExpiresAt = time.UnixMilli(created), time.UnixMilli(exp)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken removes one token (no error when absent).
func (s *Store) DeleteToken(ctx context.Context, raw string) error {
	_, err := s.exec(ctx, deleteToken, storage.TokenHash(raw))
	return err
}

// DeleteTokens removes every token of kind for username ("" kind: all).
func (s *Store) DeleteTokens(ctx context.Context, username, kind string) error {
	_, err := s.exec(ctx, `DELETE FROM tokens WHERE username = ? AND (? = '' OR kind = ?)`, username, kind, kind)
	return err
}

// PurgeExpired deletes expired tokens, OpenID Connect auth requests and
// access tokens.
func (s *Store) PurgeExpired(ctx context.Context) error {
	now := s.now().UnixMilli()
	for _, q := range []string{`DELETE FROM tokens WHERE expires_at <= ?`, `DELETE FROM oidc_auth_requests WHERE expires_at <= ?`,
		`DELETE FROM oidc_tokens WHERE expires_at <= ?`} {
		if _, err := s.exec(ctx, q, now); err != nil {
			return fmt.Errorf("purge expired: %w", err)
		}
	}
	return nil
}
