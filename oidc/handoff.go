package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/signin"
	"github.com/camotp/camotp/web"
)

var _ web.Handoff = (*Provider)(nil)

// wantsMFA is true when the client asked for a second factor (acr_values).
func wantsMFA(req *zoidc.AuthRequest) bool {
	return slices.Contains(req.ACRValues, ACRMFA) || slices.Contains(req.ACRValues, papeMFA)
}

// fresh is true when the request demands a new sign-in: prompt=login or
// max_age (the library turns prompt=login into max_age=0).
func fresh(req *zoidc.AuthRequest) bool {
	return req.MaxAge != nil || slices.Contains(req.Prompt, zoidc.PromptLogin)
}

func (p *Provider) request(ctx context.Context, id string) (*authRequest, error) {
	a, err := p.st.OIDCAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, web.ErrHandoff
	}
	if err != nil {
		return nil, err
	}
	return decodeAuthRequest(a)
}

// Describe tells the sign-in pages what auth request id demands.
func (p *Provider) Describe(ctx context.Context, id string) (web.HandoffRequest, error) {
	ar, err := p.request(ctx, id)
	if err != nil {
		return web.HandoffRequest{}, err
	}
	if ar.Done() {
		return web.HandoffRequest{}, web.ErrHandoff
	}
	hr := web.HandoffRequest{Client: ar.req.ClientID, TrustAllowed: !fresh(ar.req) && !wantsMFA(ar.req)}
	if u, err := url.Parse(ar.req.RedirectURI); err == nil {
		hr.RedirectOrigin = u.Scheme + "://" + u.Host
	}
	return hr, nil
}

// Finish answers auth request id with the session and returns the
// provider's callback, which sends the code to the client. A session
// that began before the request does not do when the request asks for a
// fresh sign-in (prompt=login, max_age exceeded) or for a second factor
// the session did not pass: web.ErrReauthenticate. A session begun
// for this request that still lacks the second factor asked for (the
// user has none) ends the request with access_denied.
func (p *Provider) Finish(ctx context.Context, id, session string) (string, error) {
	ar, err := p.request(ctx, id)
	if err != nil {
		return "", err
	}
	si, err := p.svc.SessionInfo(ctx, session)
	if err != nil {
		return "", web.ErrReauthenticate
	}
	begunForIt := !si.At.Before(ar.createdAt)
	amr, acr := amrOf(si.Method)
	// A session that skipped the second factor on a trusted browser never
	// answers a request that forbids that (prompt=login, max_age,
	// acr_values=mfa), however recent it is: the user signs in again.
	trustedSkip := si.Method == signin.MethodTrustedBrowser && (fresh(ar.req) || wantsMFA(ar.req))
	if trustedSkip || (!begunForIt && !p.meets(ar.req, si)) {
		return "", web.ErrReauthenticate
	}
	if wantsMFA(ar.req) && acr != ACRMFA {
		p.audit(ctx, si.Username, ar.req.ClientID, "denied: no second factor")
		return p.errorRedirect(ar, zoidc.ErrAccessDenied().WithDescription("the client requires a second factor and the user has none"))
	}
	rec := signIn{Username: si.Username, Subject: si.Subject, Email: si.Email, AuthTime: si.At, Method: si.Method, AMR: amr, ACR: acr}
	if si.Method == signin.MethodBodycam && si.Camera != nil {
		rec.CameraModel, rec.CameraSerial = si.Camera.Model.DisplayName(), si.Camera.Serial
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode sign-in: %w", err)
	}
	if err := p.st.CompleteOIDCAuthRequest(ctx, id, data); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return "", web.ErrHandoff
		}
		return "", err
	}
	p.audit(ctx, si.Username, ar.req.ClientID, "ok")
	return PathCallback + "?id=" + url.QueryEscape(id), nil
}

// meets is true when a session begun before the request may answer it:
// no prompt=login, within max_age, and a second factor passed when the
// request asks for one.
func (p *Provider) meets(req *zoidc.AuthRequest, si signin.SessionInfo) bool {
	if slices.Contains(req.Prompt, zoidc.PromptLogin) {
		return false
	}
	if req.MaxAge != nil && p.cfg.Now().Sub(si.At) > time.Duration(*req.MaxAge)*time.Second {
		return false
	}
	_, acr := amrOf(si.Method)
	return !wantsMFA(req) || acr == ACRMFA
}

func (p *Provider) audit(ctx context.Context, user, clientID, result string) {
	p.st.Audit(context.WithoutCancel(ctx), model.AuditEntry{Actor: user, Action: "oidc.authorize", Subject: user, Result: result,
		Detail: "client " + clientID})
}

// errorRedirect is the URL that ends ar at the client with e.
func (p *Provider) errorRedirect(ar *authRequest, e *zoidc.Error) (string, error) {
	p.st.DeleteOIDCAuthRequest(context.Background(), ar.id)
	e.State = ar.req.State
	return op.AuthResponseURL(ar.req.RedirectURI, ar.req.ResponseType, ar.req.ResponseMode, e, p.op.Encoder())
}
