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

// OTPState returns the record of subject; found is false when none exists.
func (s *Store) OTPState(ctx context.Context, subject string) (st model.OTPState, found bool, err error) {
	var off, rstep *int64
	err = s.queryRow(ctx, `SELECT seed_version, last_step, drift, resync_offset, resync_step FROM otp_state WHERE subject = $1`,
		args(subject), &st.SeedVersion, &st.LastStep, &st.Drift, &off, &rstep)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.OTPState{}, false, nil
	}
	if err != nil {
		return model.OTPState{}, false, fmt.Errorf("read otp state: %w", err)
	}
	if off != nil {
		st.ResyncOffset = off
		if rstep != nil {
			st.ResyncStep = *rstep
		}
	}
	return st, true, nil
}

// AcceptStep durably records that step was accepted for subject under
// seedVersion, with the drift learnt. It returns false when a step at or
// after this one was already accepted for the same seed (a concurrent use
// of the same code lost the race): the caller must treat it as a replay.
// One conditional upsert: the database decides the race.
func (s *Store) AcceptStep(ctx context.Context, subject string, seedVersion uint64, step, drift int64) (bool, error) {
	tag, err := s.exec(ctx, acceptStep, subject, seedVersion, step, drift, s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("record accepted step: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// acceptStep is the replay rule: the record moves forward only (a newer
// seed, or a later step of the same seed). PostgreSQL locks the row and
// evaluates the WHERE on its latest version, so of concurrent uses of one
// step exactly one changes it. $1 subject, $2 seed version, $3 step, $4
// drift, $5 now (ms: when a code of the source was last accepted).
const acceptStep = `INSERT INTO otp_state (subject, seed_version, last_step, drift, used_at) VALUES ($1,$2,$3,$4,$5)
	ON CONFLICT (subject) DO UPDATE SET seed_version = excluded.seed_version, last_step = excluded.last_step,
		drift = excluded.drift, resync_offset = NULL, resync_step = NULL, used_at = excluded.used_at
	WHERE otp_state.seed_version < excluded.seed_version
	   OR (otp_state.seed_version = excluded.seed_version AND otp_state.last_step < excluded.last_step)`

// use runs acceptStep for u inside tx: ErrStepUsed when the step was used
// already.
func use(ctx context.Context, tx pgx.Tx, u *model.StepUse, now time.Time) error {
	tag, err := tx.Exec(ctx, acceptStep, u.Subject, u.SeedVersion, u.Step, u.Drift, now.UnixMilli())
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return storage.ErrStepUsed
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
		VALUES ($1, $2, -1, 0, $3, $4)
		ON CONFLICT (subject) DO UPDATE SET
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

const (
	insertToken = `INSERT INTO tokens (hash, kind, username, method, ip, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`
	deleteToken = `DELETE FROM tokens WHERE hash = $1`
)

// CreateToken makes a random token of kind for username, valid for ttl, and
// returns it; only its hash is stored.
func (s *Store) CreateToken(ctx context.Context, kind, username, method, ip string, ttl time.Duration) (string, error) {
	raw, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	if _, err := s.exec(ctx, insertToken, storage.TokenHash(raw), kind, username, method, ip, now.UnixMilli(), now.Add(ttl).UnixMilli()); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return raw, nil
}

// endOnce ends the live token old inside tx with q (endToken, or
// exchangeToken with its arguments after the old token's): ErrNotFound
// when it is not live (unknown, expired, or ended by a concurrent
// exchange of the same token: PostgreSQL lets one statement take the row,
// the others find it gone).
func endOnce(ctx context.Context, tx pgx.Tx, q, old string, now time.Time, args ...any) error {
	tag, err := tx.Exec(ctx, q, append([]any{storage.TokenHash(old), now.UnixMilli()}, args...)...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	return nil
}

const (
	// endToken deletes a live token. $1 hash, $2 now (ms).
	endToken = `DELETE FROM tokens WHERE hash = $1 AND expires_at > $2`
	// exchangeToken ends a live token and makes its row the new token in
	// one statement: $1 old hash, $2 now (ms), then the new token's hash,
	// kind, username, method, ip and expiry (ms).
	exchangeToken = `UPDATE tokens SET hash = $3, kind = $4, username = $5, method = $6, ip = $7, created_at = $2, expires_at = $8
	WHERE hash = $1 AND expires_at > $2`
)

// pass is the transaction of a passed sign-in step: for an unreserved
// attempt a slot on its counters (reserve), the success on the counters
// (clearing it), the replay record u (when not nil), the end of the token
// old by q (endOnce) and the audit row e; any refusal rolls it all back.
func (s *Store) pass(ctx context.Context, tx pgx.Tx, q, old string, now time.Time, u *model.StepUse, e model.AuditEntry, settle model.Settlement, args ...any) error {
	// The counters' rows are locked first, as every other transaction on
	// them does (reservations, failures), so no two of them wait for each
	// other's locks in opposite orders.
	if settle.Unreserved {
		if _, err := reserve(ctx, tx, settle.At, settle.Rules); err != nil {
			return err
		}
	}
	if err := recordSuccess(ctx, tx, settle.Rules); err != nil {
		return err
	}
	var proof []model.AuditEntry
	if u != nil {
		if err := use(ctx, tx, u, now); err != nil {
			return err
		}
		if u.Rotation != "" {
			var err error
			if proof, err = s.proveRotation(ctx, tx, u.Rotation, u.SeedVersion, now); err != nil {
				return err
			}
		}
	}
	if err := endOnce(ctx, tx, q, old, now, args...); err != nil {
		return err
	}
	return s.appendAudits(ctx, tx, append(proof, e))
}

// passed maps the error of a pass transaction: a refused unreserved
// attempt becomes a *storage.ThrottledError with its wait.
func (s *Store) passed(ctx context.Context, what string, settle model.Settlement, err error) error {
	if errors.Is(err, errRefused) {
		return storage.Throttled(ctx, s.GetThrottles, settle.At, settle.Rules)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ExchangeToken takes the replay record u (when not nil), ends the token
// old and makes a token of kind for username valid for ttl in its place,
// appends e to the audit log and settles the attempt's throttle counters
// as a success, all in one transaction: a passed code is used up, a
// pending sign-in becomes a session, the log says so and the counters
// start over, or nothing happens. An unreserved attempt is checked
// against its counters first (*storage.ThrottledError when they would
// have refused it). ErrStepUsed when u's step was used already (a
// concurrent use of the code won); the token is exchanged once: when old
// is not live (unknown, expired, or a concurrent exchange won) nothing
// happens and the error matches ErrNotFound.
func (s *Store) ExchangeToken(ctx context.Context, old, kind, username, method, ip string, ttl time.Duration, u *model.StepUse, e model.AuditEntry, settle model.Settlement) (string, error) {
	raw, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
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
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return s.pass(ctx, tx, endToken, old, now, u, e, settle)
	})
	if err != nil {
		return s.passed(ctx, "consume token", settle, err)
	}
	return nil
}

const tokenCols = `kind, username, method, ip, created_at, expires_at`

func scanToken(row pgx.Row) (model.Token, error) {
	var t model.Token
	var created, exp int64
	if err := row.Scan(&t.Kind, &t.Username, &t.Method, &t.IP, &created, &exp); err != nil {
		return model.Token{}, err
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(created), time.UnixMilli(exp)
	return t, nil
}

// LookupToken returns the unexpired token of kind; ErrNotFound otherwise.
func (s *Store) LookupToken(ctx context.Context, kind, raw string) (model.Token, error) {
	if raw == "" || len(raw) > 128 {
		return model.Token{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	var t model.Token
	err := s.row(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3`,
		args(storage.TokenHash(raw), kind, s.now().UnixMilli()), func(r pgx.Row) error {
			var err error
			t, err = scanToken(r)
			return err
		})
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Token{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.Token{}, fmt.Errorf("read token: %w", err)
	}
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
	var cs cameraCheckScan
	var k storage.ClockScan
	err := s.row(ctx, `SELECT t.kind, t.username, t.method, t.ip, t.created_at, t.expires_at, `+cameraCheckCols+`, `+storage.ClockCols+`
		FROM tokens t LEFT JOIN cameras c ON c.assigned_user = t.username LEFT JOIN otp_state o ON o.subject = $1 || c.serial
		LEFT JOIN camera_clock k ON k.serial = c.serial
		WHERE t.hash = $2 AND t.kind = $3 AND t.expires_at > $4`,
		args(model.CameraSubjectPrefix, storage.TokenHash(raw), model.TokenPending, s.now().UnixMilli()), func(r pgx.Row) error {
			var created, exp int64
			t := &pc.Token
			if err := r.Scan(append(append([]any{&t.Kind, &t.Username, &t.Method, &t.IP, &created, &exp}, cs.dest()...), k.Dest()...)...); err != nil {
				return err
			}
			t.CreatedAt, t.ExpiresAt = time.UnixMilli(created), time.UnixMilli(exp)
			return nil
		})
	if errors.Is(err, pgx.ErrNoRows) {
		return model.PendingCheck{}, fmt.Errorf("token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return model.PendingCheck{}, fmt.Errorf("read token: %w", err)
	}
	if pc.Camera, err = cs.check(s.seal); err != nil {
		return model.PendingCheck{}, fmt.Errorf("camera of %s: %w", pc.Token.Username, err)
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
	var out []model.Token
	err := s.query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE username = $1 AND expires_at > $2 ORDER BY created_at DESC`,
		args(username, s.now().UnixMilli()), func(r pgx.Rows) error {
			t, err := scanToken(r)
			out = append(out, t)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes one token (no error when absent).
func (s *Store) DeleteToken(ctx context.Context, raw string) error {
	if _, err := s.exec(ctx, deleteToken, storage.TokenHash(raw)); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// DeleteTokens removes every token of kind for username ("" kind: all).
func (s *Store) DeleteTokens(ctx context.Context, username, kind string) error {
	if _, err := s.exec(ctx, `DELETE FROM tokens WHERE username = $1 AND ($2 = '' OR kind = $2)`, username, kind); err != nil {
		return fmt.Errorf("delete tokens of %s: %w", username, err)
	}
	return nil
}

// PurgeExpired deletes expired tokens, OpenID Connect auth requests and
// access tokens.
func (s *Store) PurgeExpired(ctx context.Context) error {
	now := s.now().UnixMilli()
	for _, q := range []string{`DELETE FROM tokens WHERE expires_at <= $1`, `DELETE FROM oidc_auth_requests WHERE expires_at <= $1`,
		`DELETE FROM oidc_tokens WHERE expires_at <= $1`} {
		if _, err := s.exec(ctx, q, now); err != nil {
			return fmt.Errorf("purge expired: %w", err)
		}
	}
	return nil
}
