package model

import "time"

// OIDCClient is a relying party registered to sign users in through
// camotp's OpenID Connect provider.
type OIDCClient struct {
	ID string `json:"id"`
	// SecretHash is the SHA-256 of the client secret (nil for a public
	// client). The secret is 32 random bytes, so a fast hash suffices.
	SecretHash   []byte    `json:"-"`
	Public       bool      `json:"public"`
	RedirectURIs []string  `json:"redirectUris"`
	CreatedAt    time.Time `json:"createdAt"`
}

// OIDCKey is a signing key of the OpenID Connect provider.
type OIDCKey struct {
	ID  string
	Alg string // JOSE algorithm, e.g. RS256
	// Private is the key in PKCS #8 DER; it is sealed with the master key
	// at rest.
	Private   []byte
	CreatedAt time.Time
	// RetiredAt is when a newer key replaced it (nil: the signing key).
	RetiredAt *time.Time
}

// OIDCAuthRequest is an authorization request between the client's
// redirect to camotp and the exchange of its code. Request and SignIn are
// the provider's own encodings.
type OIDCAuthRequest struct {
	ID        string
	ClientID  string
	Request   []byte
	SignIn    []byte // nil until a sign-in completed it
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OIDCToken is an opaque access token issued to a client.
type OIDCToken struct {
	ID          string
	AuthRequest string
	ClientID    string
	Username    string
	Scopes      []string
	ExpiresAt   time.Time
}
