package signin

import (
	"context"
	"errors"

	"github.com/camotp/camotp/internal/model"
)

// UserLister lists users, for the admin's MFA overview.
type UserLister interface {
	Users(ctx context.Context) ([]model.User, error)
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

// ErrNotAdmin refuses the admin pages to a session that is not an
// administrator's, or that did not pass MFA.
var ErrNotAdmin = errors.New("the admin pages need an administrator account signed in with a second factor")

// AdminSession returns the administrator of a session token. The session
// must have passed MFA (a password-only session is refused even for an
// admin, so turning MFA off needs MFA).
func (s *Service) AdminSession(ctx context.Context, token string) (string, error) {
	t, err := s.st.LookupToken(ctx, model.TokenSession, token)
	if err != nil {
		return "", ErrBadToken
	}
	u, _, err := s.st.User(ctx, t.Username)
	if err != nil {
		return "", err
	}
	if u.Role != "admin" || t.Method == MethodPassword {
		return t.Username, ErrNotAdmin
	}
	return t.Username, nil
}
