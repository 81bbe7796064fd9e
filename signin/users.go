package signin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// throttleKinds are the attempts counted per user: passwords, codes, codes
// sent.
var throttleKinds = []string{"password", "otp", "send"}

// userRanges are the key ranges of every throttle counter of user: the
// account's, and every (account, source) pair's.
func userRanges(user string) []model.KeyRange {
	var out []model.KeyRange
	for _, k := range throttleKinds {
		out = append(out, model.ExactKey(acctKey(k, user)), model.KeyPrefix(k+":pair:"+user+"\x00"))
	}
	return out
}

// userOfKey is the user a counter's key belongs to ("" when it is none of
// a user's: not a key of pairKey or acctKey).
func userOfKey(key string) string {
	for _, k := range throttleKinds {
		if u, ok := strings.CutPrefix(key, k+":acct:"); ok {
			return u
		}
		if rest, ok := strings.CutPrefix(key, k+":pair:"); ok {
			if u, _, found := strings.Cut(rest, "\x00"); found {
				return u
			}
		}
	}
	return ""
}

// UserStatus is one user as the console's user page lists them.
type UserStatus struct {
	model.UserRow
	// Methods are what the user can pass MFA with now, in challenge
	// order.
	Methods UserMethods
	// BlockedUntil is when the last block on the user's attempts (from
	// any source, of any kind) ends; zero when none is in force.
	BlockedUntil time.Time
}

// Blocked tells whether a block on the user's attempts is in force.
func (u UserStatus) Blocked() bool { return !u.BlockedUntil.IsZero() }

// Users is one page of the console's user listing, with each user's
// methods and whether they are blocked now, and the number of users
// matching q.
func (s *Service) Users(ctx context.Context, q model.UserQuery) ([]UserStatus, int, error) {
	p, err := s.st.UserPage(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	return s.statuses(ctx, p.Users, p.Total)
}

// statuses adds methods and blocks to rows.
func (s *Service) statuses(ctx context.Context, rows []model.UserRow, total int) ([]UserStatus, int, error) {
	out := make([]UserStatus, len(rows))
	var ranges []model.KeyRange
	at := map[string]int{}
	for i, r := range rows {
		um, err := s.Methods(ctx, r.Username)
		if err != nil {
			return nil, 0, err
		}
		out[i] = UserStatus{UserRow: r, Methods: um}
		at[r.Username] = i
		ranges = append(ranges, userRanges(r.Username)...)
	}
	counters, err := s.st.ThrottlesIn(ctx, ranges...)
	if err != nil {
		return nil, 0, err
	}
	now := s.now()
	for _, c := range counters {
		i, ok := at[userOfKey(c.Key)]
		if ok && c.BlockedUntil.After(now) && c.BlockedUntil.After(out[i].BlockedUntil) {
			out[i].BlockedUntil = c.BlockedUntil
		}
	}
	return out, total, nil
}

// UsersWithoutMFA is one page (1-based, of size) of the users who have
// no method to pass MFA with, and how many there are. It asks each user's
// methods (policy, camera, registered methods): a report, not a listing
// for every page view.
func (s *Service) UsersWithoutMFA(ctx context.Context, page, size int) ([]UserStatus, int, error) {
	all, err := s.MFAUsers(ctx, true)
	if err != nil {
		return nil, 0, err
	}
	total := len(all)
	from := min(max(page-1, 0)*size, total)
	all = all[from:min(from+size, total)]
	names := make([]string, 0, len(all))
	for _, u := range all {
		names = append(names, u.Username)
	}
	p, err := s.st.UserPage(ctx, model.UserQuery{Names: names, Size: len(names)})
	if err != nil {
		return nil, 0, err
	}
	rows := p.Users
	return s.statuses(ctx, rows, total)
}

// Unblock clears every throttle counter of user — blocks, attempts and the
// account's backoff, from every source and of every kind — so that the
// user may sign in again at once (an administrator's action, audited with
// actor and ip). It returns how many counters it cleared.
func (s *Service) Unblock(ctx context.Context, user, actor, ip string) (int, error) {
	if _, _, err := s.st.User(ctx, user); err != nil {
		return 0, err
	}
	n, err := s.st.ClearThrottles(ctx, userRanges(user)...)
	s.st.Audit(context.WithoutCancel(ctx), model.AuditEntry{Actor: actor, Action: "user.unblock", Subject: user, Result: model.Result(err), SourceIP: ip,
		Detail: fmt.Sprintf("%d throttle counters cleared", n)})
	return n, err
}

// BlockedFor is how long attempts of kind ("password", "otp" for codes,
// "send" for codes sent) by user from ip stay refused by a block: zero
// when none is in force. The pages show it before a code is typed.
func (s *Service) BlockedFor(ctx context.Context, kind, user, ip string) (time.Duration, error) {
	counters, err := s.st.ThrottlesIn(ctx, model.ExactKey(pairKey(kind, user, ip)), model.ExactKey(acctKey(kind, user)))
	if err != nil {
		return 0, err
	}
	var wait time.Duration
	now := s.now()
	for _, c := range counters {
		wait = max(wait, c.BlockedUntil.Sub(now))
	}
	return wait, nil
}
