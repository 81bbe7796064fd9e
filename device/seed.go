package device

import (
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// ErrNoSeed is returned by a SeedSource of a camera that holds no seed.
var ErrNoSeed = errors.New("camera is not provisioned")

// Seed is a TOTP seed with the parameters it is used with (RFC 6238).
type Seed struct {
	// Secret is the raw shared key (160 bits for seeds camotp generates).
	Secret []byte `json:"secret"`
	// Algorithm is SHA1, SHA256 or SHA512.
	Algorithm string `json:"algorithm"`
	// Digits is 6 or 8.
	Digits int `json:"digits"`
	// Period is the step in seconds.
	Period int `json:"period"`
	// Version is the provisioning version the seed was delivered with; a
	// camera refuses a delivery whose version is not newer.
	Version uint64 `json:"version"`
}

// DefaultSeed returns a seed with RFC 6238's default parameters (SHA1, 6
// digits, 30 s) around secret.
func DefaultSeed(secret []byte) Seed {
	return Seed{Secret: secret, Algorithm: "SHA1", Digits: 6, Period: 30}
}

// ParseBase32Seed decodes a base32 secret (case and padding are forgiven;
// spaces are not) into a seed with default parameters.
func ParseBase32Seed(s string) (Seed, error) {
	clean := strings.TrimRight(strings.ToUpper(strings.TrimSpace(s)), "=")
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(clean)
	if err != nil {
		return Seed{}, fmt.Errorf("seed is not valid base32: %w", err)
	}
	seed := DefaultSeed(raw)
	if err := seed.Validate(); err != nil {
		return Seed{}, err
	}
	return seed, nil
}

// Base32 returns the secret in unpadded base32, as otpauth URIs and oathtool use it.
func (s Seed) Base32() string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(s.Secret)
}

// Validate reports whether the seed can produce codes.
func (s Seed) Validate() error {
	if len(s.Secret) < 10 || len(s.Secret) > 128 {
		return fmt.Errorf("seed secret must be 10 to 128 bytes, got %d", len(s.Secret))
	}
	if _, err := s.algorithm(); err != nil {
		return err
	}
	if s.Digits != 6 && s.Digits != 8 {
		return fmt.Errorf("seed digits must be 6 or 8, got %d", s.Digits)
	}
	if s.Period < 1 || s.Period > 300 {
		return fmt.Errorf("seed period must be 1 to 300 seconds, got %d", s.Period)
	}
	return nil
}

func (s Seed) algorithm() (otp.Algorithm, error) {
	switch strings.ToUpper(s.Algorithm) {
	case "SHA1", "":
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	case "SHA512":
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("unknown seed algorithm %q (want SHA1, SHA256 or SHA512)", s.Algorithm)
}

// Opts returns the pquerna/otp options for this seed (Digits always set).
func (s Seed) Opts() (totp.ValidateOpts, error) {
	if err := s.Validate(); err != nil {
		return totp.ValidateOpts{}, err
	}
	alg, _ := s.algorithm()
	return totp.ValidateOpts{Period: uint(s.Period), Digits: otp.Digits(s.Digits), Algorithm: alg}, nil
}

// Code returns the TOTP code for time t.
func (s Seed) Code(t time.Time) (string, error) {
	opts, err := s.Opts()
	if err != nil {
		return "", err
	}
	code, err := totp.GenerateCodeCustom(s.Base32(), t, opts)
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return code, nil
}

// Remaining returns how long the code for time t stays current.
func (s Seed) Remaining(t time.Time) time.Duration {
	p := int64(s.Period)
	if p <= 0 {
		p = 30
	}
	period := time.Duration(p) * time.Second
	into := time.Duration(t.UnixNano() % int64(period))
	if into < 0 {
		into += period
	}
	return period - into
}
