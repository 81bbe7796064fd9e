package signin

import (
	"context"
	"errors"
	"fmt"

	"github.com/camotp/camotp/internal/model"
)

// UserLister lists users, for the admin's MFA overview and the
// console's user pages.
type UserLister interface {
	Users(ctx context.Context) ([]model.User, error)
	UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error)
}

// ThrottleAdmin reads and clears the throttle counters of users, for the
// console (is a user blocked now; unblock them).
type ThrottleAdmin interface {
	ThrottlesIn(ctx context.Context, ranges ...model.KeyRange) ([]model.KeyedThrottle, error)
	ClearThrottles(ctx context.Context, ranges ...model.KeyRange) (int, error)
}

// UserMFA is one user's MFA status in the admin overview.
type UserMFA struct {
	Username string      `json:"username"`
	Methods  UserMethods `json:"methods"`
	// Configured is false when the user has no method to pass MFA with.
	Configured bool `json:"configured"`
}

// MFAUsers lists every user's MFA status; only those without a method
// when withoutOnly.
func (s *Service) MFAUsers(ctx context.Context, withoutOnly bool) ([]UserMFA, error) {
	users, err := s.st.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := []UserMFA{}
	for _, u := range users {
		um, err := s.Methods(ctx, u.Username)
		if err != nil {
			return nil, err
		}
		configured := len(um.Available) > 0
		if withoutOnly && configured {
			continue
		}
		out = append(out, UserMFA{Username: u.Username, Methods: um, Configured: configured})
	}
	return out, nil
}

// CheckUser tells whether username names a user: nil, or an error that
// matches storage.ErrNotFound when it does not (or a store failure).
func (s *Service) CheckUser(ctx context.Context, username string) error {
	_, _, err := s.st.User(ctx, username)
	return err
}

// UserRole is the role of username (storage.ErrNotFound when none);
// users made before roles existed are officers.
func (s *Service) UserRole(ctx context.Context, username string) (model.Role, error) {
	u, _, err := s.st.User(ctx, username)
	if err != nil {
		return "", err
	}
	r, err := model.ParseRole(u.Role)
	if err != nil {
		return "", fmt.Errorf("user %s: %w", username, err)
	}
	return r, nil
}

// Errors of the console's sessions.
var (
	// ErrNotAdmin refuses the console to a user whose role does not open
	// it (an officer).
	ErrNotAdmin = errors.New("the administration pages are for administrators (administrator, fleet or security role); your account has none of these roles")
	// ErrAdminNeedsMFA refuses the console to a session that passed no
	// second factor, even an administrator's (so turning MFA off needs
	// MFA).
	ErrAdminNeedsMFA = errors.New("the administration pages need an administrator account signed in with a second factor: sign out, then sign in again with your code")
)

// Staff is the user of a session as the console sees them.
type Staff struct {
	Username string
	Role     model.Role
	// MFA says the session passed a second factor (a trusted browser did
	// once), not the password alone.
	MFA bool
}

// Can tells whether the staff member may use the console for p: the role
// allows it and the session passed a second factor.
func (st Staff) Can(p model.Permission) bool { return st.MFA && st.Role.Can(p) }

// Staff returns the user of a session token and their role (any role,
// officers included); ErrBadToken when the session is unknown or expired.
func (s *Service) Staff(ctx context.Context, token string) (Staff, error) {
	t, err := s.st.LookupToken(ctx, model.TokenSession, token)
	if err != nil {
		return Staff{}, ErrBadToken
	}
	u, _, err := s.st.User(ctx, t.Username)
	if err != nil {
		return Staff{}, err
	}
	role, err := model.ParseRole(u.Role)
	if err != nil {
		role = model.RoleOfficer // a role no longer known opens nothing
	}
	return Staff{Username: u.Username, Role: role, MFA: t.Method != MethodPassword}, nil
}

// ConsoleSession returns the staff member of a session token whose role
// opens the console and whose session passed a second factor:
// ErrBadToken when there is no session, ErrNotAdmin for a role that does
// not open the console, ErrAdminNeedsMFA for a password-only session (the
// staff member is returned with both).
func (s *Service) ConsoleSession(ctx context.Context, token string) (Staff, error) {
	st, err := s.Staff(ctx, token)
	switch {
	case err != nil:
		return Staff{}, err
	case !st.Role.Console():
		return st, ErrNotAdmin
	case !st.MFA:
		return st, ErrAdminNeedsMFA
	}
	return st, nil
}
