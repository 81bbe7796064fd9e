package storagetest

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// authRequest creates the auth request id of clientID, valid for ttl.
func (e *env) authRequest(t *testing.T, id, clientID string, ttl time.Duration) {
	t.Helper()
	must(t, e.s.CreateOIDCAuthRequest(e.ctx, id, clientID, []byte(`{"scope":"openid","for":"`+id+`"}`), ttl), "create auth request "+id)
}

// issueCode creates auth request id, completes it with a sign-in and
// attaches code (valid for a minute).
func (e *env) issueCode(t *testing.T, id, code string) {
	t.Helper()
	e.authRequest(t, id, "records", 10*time.Minute)
	must(t, e.s.CompleteOIDCAuthRequest(e.ctx, id, []byte(`{"user":"alice"}`)), "complete "+id)
	must(t, e.s.SaveOIDCCode(e.ctx, id, code, time.Minute), "save code of "+id)
}

// accessToken stores an access token id issued for auth request ar.
func (e *env) accessToken(t *testing.T, id, ar, clientID string, ttl time.Duration) {
	t.Helper()
	must(t, e.s.AddOIDCToken(e.ctx, model.OIDCToken{ID: id, AuthRequest: ar, ClientID: clientID, Username: "alice",
		Scopes: []string{"openid", "profile"}, ExpiresAt: e.now().Add(ttl)}), "add access token "+id)
}

func oidcCases() []testCase {
	return []testCase{
		{"Clients", func(t *testing.T, e *env) {
			sum := sha256.Sum256([]byte("client secret"))
			records := model.OIDCClient{ID: "records", SecretHash: sum[:], RedirectURIs: []string{"https://records.pd.example/cb", "https://records.pd.example/cb2"}}
			app := model.OIDCClient{ID: "app", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}
			must(t, e.s.AddOIDCClient(e.ctx, records), "add records")
			must(t, e.s.AddOIDCClient(e.ctx, app), "add app")
			mustBe(t, e.s.AddOIDCClient(e.ctx, model.OIDCClient{ID: "records", Public: true}), storage.ErrExists, "duplicate")
			c, err := e.s.OIDCClient(e.ctx, "records")
			must(t, err, "read records")
			if c.ID != "records" || c.Public || !bytes.Equal(c.SecretHash, sum[:]) || !slices.Equal(c.RedirectURIs, records.RedirectURIs) {
				t.Fatalf("client %+v, want %+v", c, records)
			}
			sameTime(t, c.CreatedAt, T0, "created")
			if c, err := e.s.OIDCClient(e.ctx, "app"); err != nil || !c.Public || len(c.SecretHash) != 0 {
				t.Fatalf("public client %+v %v", c, err)
			}
			cs, err := e.s.OIDCClients(e.ctx)
			must(t, err, "list")
			if len(cs) != 2 || cs[0].ID != "app" || cs[1].ID != "records" || !slices.Equal(cs[1].RedirectURIs, records.RedirectURIs) {
				t.Fatalf("clients %+v, want app, records", cs)
			}
			_, err = e.s.OIDCClient(e.ctx, "nope")
			mustBe(t, err, storage.ErrNotFound, "unknown client")
			must(t, e.s.RemoveOIDCClient(e.ctx, "app"), "remove")
			_, err = e.s.OIDCClient(e.ctx, "app")
			mustBe(t, err, storage.ErrNotFound, "removed client")
			mustBe(t, e.s.RemoveOIDCClient(e.ctx, "app"), storage.ErrNotFound, "remove again")
		}},
		{"RemoveClientTakesItsRequestsAndTokens", func(t *testing.T, e *env) {
			for _, id := range []string{"records", "other"} {
				must(t, e.s.AddOIDCClient(e.ctx, model.OIDCClient{ID: id, Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}), "add")
				e.authRequest(t, "ar-"+id, id, 10*time.Minute)
				e.accessToken(t, "tk-"+id, "ar-"+id, id, time.Hour)
			}
			must(t, e.s.RemoveOIDCClient(e.ctx, "records"), "remove")
			_, err := e.s.OIDCAuthRequest(e.ctx, "ar-records")
			mustBe(t, err, storage.ErrNotFound, "auth request of a removed client")
			_, err = e.s.OIDCToken(e.ctx, "tk-records")
			mustBe(t, err, storage.ErrNotFound, "access token of a removed client")
			if _, err := e.s.OIDCAuthRequest(e.ctx, "ar-other"); err != nil {
				t.Fatalf("another client's request: %v", err)
			}
			if _, err := e.s.OIDCToken(e.ctx, "tk-other"); err != nil {
				t.Fatalf("another client's token: %v", err)
			}
		}},
		{"Keys", func(t *testing.T, e *env) {
			if ks, err := e.s.OIDCKeys(e.ctx, time.Time{}); err != nil || len(ks) != 0 {
				t.Fatalf("no keys yet: %+v %v", ks, err)
			}
			k1 := model.OIDCKey{ID: "k1", Alg: "RS256", Private: []byte("pkcs8 of k1")}
			must(t, e.s.AddOIDCKey(e.ctx, k1), "add k1")
			ks, err := e.s.OIDCKeys(e.ctx, time.Time{})
			must(t, err, "keys")
			if len(ks) != 1 || ks[0].ID != "k1" || ks[0].Alg != "RS256" || !bytes.Equal(ks[0].Private, k1.Private) || ks[0].RetiredAt != nil {
				t.Fatalf("keys %+v", ks)
			}
			sameTime(t, ks[0].CreatedAt, T0, "k1 created")
			// A new key retires the signing key now.
			e.clock.Advance(time.Hour)
			rotated := T0.Add(time.Hour)
			must(t, e.s.AddOIDCKey(e.ctx, model.OIDCKey{ID: "k2", Alg: "ES256", Private: []byte("pkcs8 of k2")}), "add k2")
			ks, err = e.s.OIDCKeys(e.ctx, time.Time{})
			must(t, err, "keys")
			if len(ks) != 2 || ks[0].ID != "k2" || ks[0].RetiredAt != nil || ks[1].ID != "k1" || ks[1].RetiredAt == nil {
				t.Fatalf("keys after rotation %+v, want k2 signing, then k1 retired", ks)
			}
			sameTime(t, *ks[1].RetiredAt, rotated, "k1 retired")
			if ks, _ := e.s.OIDCKeys(e.ctx, rotated); len(ks) != 2 {
				t.Fatalf("keys not retired before the rotation: %d, want 2", len(ks))
			}
			if ks, _ := e.s.OIDCKeys(e.ctx, rotated.Add(time.Millisecond)); len(ks) != 1 || ks[0].ID != "k2" {
				t.Fatalf("keys not retired before just after the rotation: %+v, want k2", ks)
			}
			// Two keys added at one instant: the later one signs.
			must(t, e.s.AddOIDCKey(e.ctx, model.OIDCKey{ID: "k3", Alg: "RS256", Private: []byte("pkcs8 of k3")}), "add k3")
			ks, _ = e.s.OIDCKeys(e.ctx, time.Time{})
			signing := 0
			for _, k := range ks {
				if k.RetiredAt == nil {
					signing++
				}
			}
			if len(ks) != 3 || ks[0].ID != "k3" || ks[0].RetiredAt != nil || signing != 1 {
				t.Fatalf("keys %+v, want k3 first and the only one not retired", ks)
			}
		}},
		{"AuthRequestToCode", func(t *testing.T, e *env) {
			e.authRequest(t, "ar1", "records", 10*time.Minute)
			a, err := e.s.OIDCAuthRequest(e.ctx, "ar1")
			must(t, err, "read")
			if a.ID != "ar1" || a.ClientID != "records" || string(a.Request) != `{"scope":"openid","for":"ar1"}` || a.SignIn != nil {
				t.Fatalf("auth request %+v", a)
			}
			sameTime(t, a.CreatedAt, T0, "created")
			sameTime(t, a.ExpiresAt, T0.Add(10*time.Minute), "expires")
			_, err = e.s.OIDCAuthRequest(e.ctx, "nope")
			mustBe(t, err, storage.ErrNotFound, "unknown request")
			mustBe(t, e.s.SaveOIDCCode(e.ctx, "ar1", "code-1", time.Minute), storage.ErrNotFound, "code before the sign-in")
			must(t, e.s.CompleteOIDCAuthRequest(e.ctx, "ar1", []byte(`{"user":"alice"}`)), "complete")
			mustBe(t, e.s.CompleteOIDCAuthRequest(e.ctx, "ar1", []byte(`{"user":"mallory"}`)), storage.ErrNotFound, "complete again")
			mustBe(t, e.s.CompleteOIDCAuthRequest(e.ctx, "nope", []byte(`{}`)), storage.ErrNotFound, "complete unknown")
			if a, err := e.s.OIDCAuthRequest(e.ctx, "ar1"); err != nil || string(a.SignIn) != `{"user":"alice"}` {
				t.Fatalf("completed request %+v %v", a, err)
			}
			e.clock.Advance(time.Minute)
			must(t, e.s.SaveOIDCCode(e.ctx, "ar1", "code-1", time.Minute), "save code")
			mustBe(t, e.s.SaveOIDCCode(e.ctx, "ar1", "code-2", time.Minute), storage.ErrNotFound, "a second code")
			_, err = e.s.OIDCAuthRequest(e.ctx, "ar1")
			mustBe(t, err, storage.ErrNotFound, "request whose code was issued")
			a, err = e.s.ConsumeOIDCCode(e.ctx, "code-1")
			must(t, err, "consume")
			if a.ID != "ar1" || a.ClientID != "records" || string(a.SignIn) != `{"user":"alice"}` || string(a.Request) != `{"scope":"openid","for":"ar1"}` {
				t.Fatalf("consumed %+v", a)
			}
			sameTime(t, a.ExpiresAt, T0.Add(2*time.Minute), "expiry of the code's request (the code's ttl)")
			_, err = e.s.ConsumeOIDCCode(e.ctx, "code-1")
			mustBe(t, err, storage.ErrReplayed, "second use of the code")
			_, err = e.s.ConsumeOIDCCode(e.ctx, "code-2")
			mustBe(t, err, storage.ErrNotFound, "a code never issued")
		}},
		{"AuthRequestExpires", func(t *testing.T, e *env) {
			e.authRequest(t, "ar1", "records", 10*time.Minute)
			e.authRequest(t, "ar2", "records", 10*time.Minute)
			must(t, e.s.CompleteOIDCAuthRequest(e.ctx, "ar2", []byte(`{}`)), "complete ar2")
			e.clock.Advance(10*time.Minute - time.Second)
			if _, err := e.s.OIDCAuthRequest(e.ctx, "ar1"); err != nil {
				t.Fatalf("just before its end: %v", err)
			}
			e.clock.Advance(time.Second)
			_, err := e.s.OIDCAuthRequest(e.ctx, "ar1")
			mustBe(t, err, storage.ErrNotFound, "at its end")
			mustBe(t, e.s.CompleteOIDCAuthRequest(e.ctx, "ar1", []byte(`{}`)), storage.ErrNotFound, "complete at its end")
			mustBe(t, e.s.SaveOIDCCode(e.ctx, "ar2", "code", time.Minute), storage.ErrNotFound, "code for an expired request")
		}},
		{"CodeExpires", func(t *testing.T, e *env) {
			e.issueCode(t, "ar1", "code-1")
			e.clock.Advance(time.Minute)
			_, err := e.s.ConsumeOIDCCode(e.ctx, "code-1")
			mustBe(t, err, storage.ErrNotFound, "code at its end")
		}},
		{"ReplayRevokesTokens", func(t *testing.T, e *env) {
			e.issueCode(t, "ar1", "code-1")
			e.issueCode(t, "ar2", "code-2")
			_, err := e.s.ConsumeOIDCCode(e.ctx, "code-1")
			must(t, err, "consume")
			_, err = e.s.ConsumeOIDCCode(e.ctx, "code-2")
			must(t, err, "consume")
			e.accessToken(t, "tk1", "ar1", "records", time.Hour)
			e.accessToken(t, "tk2", "ar2", "records", time.Hour)
			// The code exchanged the first time: the provider deletes the
			// request; a replay must still be told apart, and revokes.
			must(t, e.s.DeleteOIDCAuthRequest(e.ctx, "ar1"), "delete the exchanged request")
			_, err = e.s.ConsumeOIDCCode(e.ctx, "code-1")
			mustBe(t, err, storage.ErrReplayed, "replay")
			_, err = e.s.OIDCToken(e.ctx, "tk1")
			mustBe(t, err, storage.ErrNotFound, "access token of a replayed code")
			if _, err := e.s.OIDCToken(e.ctx, "tk2"); err != nil {
				t.Fatalf("another code's token: %v", err)
			}
		}},
		{"DeleteAuthRequest", func(t *testing.T, e *env) {
			e.authRequest(t, "ar1", "records", 10*time.Minute)
			must(t, e.s.DeleteOIDCAuthRequest(e.ctx, "ar1"), "delete")
			_, err := e.s.OIDCAuthRequest(e.ctx, "ar1")
			mustBe(t, err, storage.ErrNotFound, "deleted request")
			mustBe(t, e.s.CompleteOIDCAuthRequest(e.ctx, "ar1", []byte(`{}`)), storage.ErrNotFound, "complete a deleted request")
			must(t, e.s.DeleteOIDCAuthRequest(e.ctx, "ar1"), "delete again")
			// A code issued and never used dies with its request.
			e.issueCode(t, "ar2", "code-2")
			must(t, e.s.DeleteOIDCAuthRequest(e.ctx, "ar2"), "delete")
			_, err = e.s.ConsumeOIDCCode(e.ctx, "code-2")
			mustBe(t, err, storage.ErrNotFound, "code of a deleted request")
		}},
		{"AccessTokens", func(t *testing.T, e *env) {
			e.accessToken(t, "tk1", "ar1", "records", time.Hour)
			tk, err := e.s.OIDCToken(e.ctx, "tk1")
			must(t, err, "read")
			if tk.ID != "tk1" || tk.AuthRequest != "ar1" || tk.ClientID != "records" || tk.Username != "alice" ||
				!slices.Equal(tk.Scopes, []string{"openid", "profile"}) {
				t.Fatalf("token %+v", tk)
			}
			sameTime(t, tk.ExpiresAt, T0.Add(time.Hour), "expires")
			_, err = e.s.OIDCToken(e.ctx, "nope")
			mustBe(t, err, storage.ErrNotFound, "unknown token")
			must(t, e.s.RevokeOIDCToken(e.ctx, "tk1", "other"), "revoke by another client")
			if _, err := e.s.OIDCToken(e.ctx, "tk1"); err != nil {
				t.Fatalf("another client revoked the token: %v", err)
			}
			must(t, e.s.RevokeOIDCToken(e.ctx, "tk1", "records"), "revoke")
			_, err = e.s.OIDCToken(e.ctx, "tk1")
			mustBe(t, err, storage.ErrNotFound, "revoked token")
			must(t, e.s.RevokeOIDCToken(e.ctx, "tk1", "records"), "revoke again (RFC 7009: no error)")
		}},
		{"AccessTokenExpires", func(t *testing.T, e *env) {
			e.accessToken(t, "tk1", "ar1", "records", time.Hour)
			e.clock.Advance(time.Hour - time.Second)
			if _, err := e.s.OIDCToken(e.ctx, "tk1"); err != nil {
				t.Fatalf("just before its end: %v", err)
			}
			e.clock.Advance(time.Second)
			_, err := e.s.OIDCToken(e.ctx, "tk1")
			mustBe(t, err, storage.ErrNotFound, "at its end")
		}},
		{"PurgeExpired", func(t *testing.T, e *env) {
			e.authRequest(t, "short", "records", time.Minute)
			e.authRequest(t, "long", "records", time.Hour)
			e.accessToken(t, "tk-short", "short", "records", time.Minute)
			e.accessToken(t, "tk-long", "long", "records", time.Hour)
			e.clock.Advance(2 * time.Minute)
			must(t, e.s.PurgeExpired(e.ctx), "purge")
			e.clock.Advance(-2 * time.Minute) // what was only hidden would come back
			_, err := e.s.OIDCAuthRequest(e.ctx, "short")
			mustBe(t, err, storage.ErrNotFound, "purged request")
			_, err = e.s.OIDCToken(e.ctx, "tk-short")
			mustBe(t, err, storage.ErrNotFound, "purged token")
			if _, err := e.s.OIDCAuthRequest(e.ctx, "long"); err != nil {
				t.Fatalf("live request purged: %v", err)
			}
			if _, err := e.s.OIDCToken(e.ctx, "tk-long"); err != nil {
				t.Fatalf("live token purged: %v", err)
			}
		}},
	}
}
