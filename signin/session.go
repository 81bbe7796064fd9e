package signin

import (
	"context"
	"errors"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// SessionInfo is how a session was signed in, for front doors that report
// it to others (the OpenID Connect provider's ID token).
type SessionInfo struct {
	Username string
	Email    string
	// Subject is the user's stable random identifier (not the username).
	Subject string
	// Method is the second factor passed (MethodBodycam, MethodApp, …),
	// MethodTrustedBrowser when a trusted browser skipped it, or
	// MethodPassword when none was required.
	Method string
	// At is when the session began (the password and second factor).
	At time.Time
	// Camera is the body camera whose code was read (Method MethodBodycam).
	Camera *model.Camera
}

// SessionInfo returns how the session token was signed in; ErrBadToken
// when it is unknown or expired.
func (s *Service) SessionInfo(ctx context.Context, session string) (SessionInfo, error) {
	t, err := s.st.LookupToken(ctx, model.TokenSession, session)
	if err != nil {
		return SessionInfo{}, ErrBadToken
	}
	u, _, err := s.st.User(ctx, t.Username)
	if err != nil {
		return SessionInfo{}, err
	}
	si := SessionInfo{Username: u.Username, Email: u.Email, Subject: u.Subject, Method: t.Method, At: t.CreatedAt}
	if t.Method == MethodBodycam {
		cam, err := s.st.CameraOf(ctx, u.Username)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return SessionInfo{}, err
		}
		if err == nil {
			si.Camera = &cam
		}
	}
	return si, nil
}
