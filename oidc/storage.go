package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/signin"
)

// signIn is the sign-in that answered an auth request, as the ID token
// reports it.
type signIn struct {
	Username     string    `json:"username"`
	Subject      string    `json:"sub"`
	Email        string    `json:"email"`
	AuthTime     time.Time `json:"authTime"`
	Method       string    `json:"method"`
	AMR          []string  `json:"amr"`
	ACR          string    `json:"acr"`
	CameraModel  string    `json:"cameraModel,omitempty"`
	CameraSerial string    `json:"cameraSerial,omitempty"`
}

// authRequest is a stored auth request as the library sees it.
type authRequest struct {
	id        string
	req       *zoidc.AuthRequest
	signin    *signIn
	createdAt time.Time
}

func decodeAuthRequest(a model.OIDCAuthRequest) (*authRequest, error) {
	ar := &authRequest{id: a.ID, req: new(zoidc.AuthRequest), createdAt: a.CreatedAt}
	if err := json.Unmarshal(a.Request, ar.req); err != nil {
		return nil, fmt.Errorf("auth request %s: %w", a.ID, err)
	}
	if a.SignIn != nil {
		ar.signin = new(signIn)
		if err := json.Unmarshal(a.SignIn, ar.signin); err != nil {
			return nil, fmt.Errorf("auth request %s: %w", a.ID, err)
		}
	}
	return ar, nil
}

// GetID is the request's random ID.
func (a *authRequest) GetID() string { return a.id }

// GetACR is what the sign-in proved.
func (a *authRequest) GetACR() string {
	if a.signin == nil {
		return ""
	}
	return a.signin.ACR
}

// GetAMR are the authentication methods (RFC 8176).
func (a *authRequest) GetAMR() []string {
	if a.signin == nil {
		return nil
	}
	return a.signin.AMR
}

// GetAudience is the client.
func (a *authRequest) GetAudience() []string { return []string{a.req.ClientID} }

// GetAuthTime is when the user signed in.
func (a *authRequest) GetAuthTime() time.Time {
	if a.signin == nil {
		return time.Time{}
	}
	return a.signin.AuthTime
}

// GetClientID is the client.
func (a *authRequest) GetClientID() string { return a.req.ClientID }

// GetCodeChallenge is the PKCE challenge, nil without one.
func (a *authRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// GetNonce is the client's nonce.
func (a *authRequest) GetNonce() string { return a.req.Nonce }

// GetRedirectURI is the client's redirect URI.
func (a *authRequest) GetRedirectURI() string { return a.req.RedirectURI }

// GetResponseType is code.
func (a *authRequest) GetResponseType() zoidc.ResponseType { return a.req.ResponseType }

// GetResponseMode is the client's response mode.
func (a *authRequest) GetResponseMode() zoidc.ResponseMode { return a.req.ResponseMode }

// GetScopes are the granted scopes.
func (a *authRequest) GetScopes() []string { return a.req.Scopes }

// GetState is the client's state, returned unchanged.
func (a *authRequest) GetState() string { return a.req.State }

// GetSubject is the user's stable subject.
func (a *authRequest) GetSubject() string {
	if a.signin == nil {
		return ""
	}
	return a.signin.Subject
}

// Done is true once a sign-in answered the request.
func (a *authRequest) Done() bool { return a.signin != nil }

// opStorage implements op.Storage over the store and the sign-in service.
type opStorage struct{ p *Provider }

var _ op.Storage = (*opStorage)(nil)
var _ op.CanSetUserinfoFromRequest = (*opStorage)(nil)

func (s *opStorage) client(ctx context.Context, id string) (*client, error) {
	c, err := s.p.st.OIDCClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, err // a plain error: an unknown client
	}
	if err != nil {
		return nil, zoidc.ErrServerError().WithParent(err)
	}
	return &client{c: c, ttl: s.p.cfg.TokenTTL}, nil
}

// CreateAuthRequest stores a validated authorize request, adding camotp's
// rules on top of the library's: the redirect URI matches exactly (also
// for native apps' loopback ports), PKCE uses S256 only, and a public
// client must use it.
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, zoidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
	}
	if !slices.Contains(c.c.RedirectURIs, req.RedirectURI) {
		return nil, zoidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client")
	}
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != zoidc.CodeChallengeMethodS256:
		return nil, zoidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge == "" && c.c.Public:
		return nil, zoidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	case !slices.Contains(req.Scopes, zoidc.ScopeOpenID):
		return nil, zoidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	if slices.Contains(req.Prompt, zoidc.PromptNone) {
		// No page may be shown: only a session that meets the request
		// answers it (the sign-in page then sends the browser straight back).
		si, err := s.p.svc.SessionInfo(ctx, info(ctx).session)
		if err != nil || !s.p.meets(req, si) {
			return nil, zoidc.ErrLoginRequired()
		}
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode auth request: %w", err)
	}
	if err := s.p.st.CreateOIDCAuthRequest(ctx, id, req.ClientID, data, s.p.cfg.RequestTTL); err != nil {
		return nil, err
	}
	return &authRequest{id: id, req: req, createdAt: s.p.cfg.Now()}, nil
}

// AuthRequestByID returns a pending or completed request whose code was
// not issued yet.
func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.p.st.OIDCAuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	return decodeAuthRequest(a)
}

// AuthRequestByCode uses the code, once (a conditional update in the
// store): a second exchange fails and revokes what the first got.
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := s.p.st.ConsumeOIDCCode(ctx, code)
	if errors.Is(err, storage.ErrReplayed) {
		s.p.cfg.Log.Warn("oidc authorization code replayed: tokens issued for it revoked")
		s.p.st.Audit(context.WithoutCancel(ctx), model.AuditEntry{Actor: "oidc", Action: "oidc.token", Result: "replayed code", SourceIP: info(ctx).ip})
	}
	if err != nil {
		return nil, err
	}
	return decodeAuthRequest(a)
}

// SaveAuthCode attaches the code to a completed request, once.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.st.SaveOIDCCode(ctx, id, code, s.p.cfg.CodeTTL)
}

// DeleteAuthRequest removes a request whose code was not used; a used
// code's row stays until it expires, so a replay is recognised.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.p.st.DeleteOIDCAuthRequest(ctx, id)
}

// CreateAccessToken stores an opaque access token for the request.
func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok || ar.signin == nil {
		return "", time.Time{}, zoidc.ErrUnsupportedGrantType()
	}
	id, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.p.cfg.Now().Add(s.p.cfg.TokenTTL)
	err = s.p.st.AddOIDCToken(ctx, model.OIDCToken{ID: id, AuthRequest: ar.id, ClientID: ar.req.ClientID,
		Username: ar.signin.Username, Scopes: ar.req.Scopes, ExpiresAt: exp})
	if err != nil {
		return "", time.Time{}, err
	}
	s.p.st.Audit(context.WithoutCancel(ctx), model.AuditEntry{Actor: ar.signin.Username, Action: "oidc.token", Subject: ar.signin.Username,
		Result: "ok", SourceIP: info(ctx).ip, Detail: "client " + ar.req.ClientID})
	return id, exp, nil
}

// CreateAccessAndRefreshTokens is not offered: no refresh tokens.
func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, zoidc.ErrUnsupportedGrantType()
}

// TokenRequestByRefreshToken: no refresh tokens.
func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

// TerminateSession signs out the browser's camotp session when it belongs
// to the user named by the id_token_hint (RP-initiated logout).
func (s *opStorage) TerminateSession(ctx context.Context, subject, clientID string) error {
	in := info(ctx)
	if in.session == "" || subject == "" {
		return nil
	}
	si, err := s.p.svc.SessionInfo(ctx, in.session)
	if err != nil || si.Subject != subject {
		return nil
	}
	s.p.svc.Logout(ctx, in.session, in.ip)
	return nil
}

// RevokeToken revokes an access token of clientID (RFC 7009).
func (s *opStorage) RevokeToken(ctx context.Context, tokenID, _, clientID string) *zoidc.Error {
	if err := s.p.st.RevokeOIDCToken(ctx, tokenID, clientID); err != nil {
		return zoidc.ErrServerError().WithParent(err)
	}
	return nil
}

// GetRefreshTokenInfo: no refresh tokens.
func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SigningKey is the newest key.
func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return s.p.signingKey(ctx)
}

// SignatureAlgorithms are RS256 and ES256 (an admin chooses the signing
// key's with rotate-key).
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256}, nil
}

// KeySet is the JWKS.
func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) { return s.p.published(ctx) }

// GetClientByClientID returns a registered client.
func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	return s.client(ctx, id)
}

// AuthorizeClientIDSecret checks a confidential client's secret.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.p.st.OIDCClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return errors.New("unknown client")
	}
	if err != nil {
		return zoidc.ErrServerError().WithParent(err)
	}
	if !checkSecret(c, secret) {
		return errors.New("wrong client secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in the library; see
// SetUserinfoFromRequest.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims and, for a body
// camera sign-in, the camera's model and serial.
func (s *opStorage) SetUserinfoFromRequest(_ context.Context, ui *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	ar, ok := req.(*authRequest)
	if !ok || ar.signin == nil {
		return nil
	}
	si := ar.signin
	fill(ui, si.Subject, si.Username, si.Email, scopes)
	if si.CameraSerial != "" {
		ui.AppendClaims(ClaimCameraModel, si.CameraModel)
		ui.AppendClaims(ClaimCameraSerial, si.CameraSerial)
	}
	return nil
}

func fill(ui *zoidc.UserInfo, sub, username, email string, scopes []string) {
	ui.Subject = sub
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		ui.PreferredUsername = username
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) {
		ui.Email = email
	}
}

// SetUserinfoFromToken answers the userinfo endpoint for a live token.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.p.st.OIDCToken(ctx, tokenID)
	if err != nil {
		return err
	}
	u, _, err := s.p.st.User(ctx, t.Username)
	if err != nil {
		return err
	}
	if u.Subject != subject {
		return errors.New("token subject mismatch")
	}
	fill(ui, u.Subject, u.Username, u.Email, t.Scopes)
	return nil
}

// SetIntrospectionFromToken answers introspection for a live token.
func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, ir *zoidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.p.st.OIDCToken(ctx, tokenID)
	if err != nil || t.ClientID != clientID {
		return errors.New("token inactive")
	}
	ir.Active = true
	ir.Subject = subject
	ir.ClientID = t.ClientID
	ir.Scope = t.Scopes
	ir.Expiration = zoidc.FromTime(t.ExpiresAt)
	return nil
}

// GetPrivateClaimsFromScopes adds none to access tokens (they are opaque).
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID: no JWT client authentication.
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile not supported")
}

// ValidateJWTProfileScopes: no JWT profile grant.
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile not supported")
}

// Health is always fine (the server's /readyz checks the database).
func (s *opStorage) Health(context.Context) error { return nil }

// amr and acr of a sign-in by method (RFC 8176).
func amrOf(method string) ([]string, string) {
	switch method {
	case signin.MethodBodycam, signin.MethodApp, signin.MethodBackup, signin.MethodEmail:
		return []string{"pwd", "otp", "mfa"}, ACRMFA
	case signin.MethodSMS:
		return []string{"pwd", "sms", "mfa"}, ACRMFA
	case signin.MethodCall:
		return []string{"pwd", "tel", "mfa"}, ACRMFA
	}
	// A trusted browser skipped the second factor, or none was required.
	return []string{"pwd"}, ACRPassword
}
