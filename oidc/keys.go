package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/camotp/camotp/internal/model"
)

// Signing algorithms of ID tokens.
const (
	AlgRS256 = string(jose.RS256) // default; every client supports it
	AlgES256 = string(jose.ES256)
)

// NewKey generates a signing key for alg (AlgRS256: RSA 2048; AlgES256:
// P-256) with a random key ID.
func NewKey(alg string) (model.OIDCKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return model.OIDCKey{}, fmt.Errorf("signing algorithm %q: want %s or %s", alg, AlgRS256, AlgES256)
	}
	if err != nil {
		return model.OIDCKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return model.OIDCKey{}, fmt.Errorf("encode %s key: %w", alg, err)
	}
	id := make([]byte, 8)
	rand.Read(id)
	return model.OIDCKey{ID: hex.EncodeToString(id), Alg: alg, Private: der}, nil
}

// key is a stored key as the library wants it: signing (private) or
// published (public).
type key struct {
	id     string
	alg    jose.SignatureAlgorithm
	signer crypto.Signer
}

func parseKey(k model.OIDCKey) (*key, error) {
	priv, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("oidc key %s: %w", k.ID, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oidc key %s: not a signing key", k.ID)
	}
	return &key{id: k.ID, alg: jose.SignatureAlgorithm(k.Alg), signer: s}, nil
}

// ID is the key ID (kid).
func (k *key) ID() string { return k.id }

// SignatureAlgorithm is the key's JOSE algorithm.
func (k *key) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }

// Algorithm is the key's JOSE algorithm.
func (k *key) Algorithm() jose.SignatureAlgorithm { return k.alg }

// Use is "sig".
func (k *key) Use() string { return "sig" }

// Key is the private key (as op.SigningKey).
func (k *key) Key() any { return k.signer }

// publicKey publishes a key in the JWKS.
type publicKey struct{ *key }

// Key is the public half.
func (k publicKey) Key() any { return k.signer.Public() }

var errNoKey = errors.New("no oidc signing key")

// signingKey is the newest key not retired.
func (p *Provider) signingKey(ctx context.Context) (*key, error) {
	keys, err := p.st.OIDCKeys(ctx, p.cfg.Now())
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.RetiredAt == nil {
			return parseKey(k)
		}
	}
	return nil, errNoKey
}

// published are the keys a client may meet: the signing key, and retired
// ones until the last token they signed expired.
func (p *Provider) published(ctx context.Context) ([]op.Key, error) {
	keys, err := p.st.OIDCKeys(ctx, p.cfg.Now().Add(-p.cfg.TokenTTL-time.Minute))
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, 0, len(keys))
	for _, k := range keys {
		pk, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, publicKey{pk})
	}
	return out, nil
}
