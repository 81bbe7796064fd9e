// Package password hashes passwords with argon2id (golang.org/x/crypto) in
// the PHC string format and checks them in constant time. A Hasher bounds
// the memory that concurrent hashing may take.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// Params are argon2id's cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultParams are OWASP's first recommended argon2id configuration
// (m=19 MiB, t=2, p=1): the strength class of RFC 9106's memory-constrained
// option at a third of its memory and CPU per sign-in.
func DefaultParams() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

// Validate says whether p is usable.
func (p Params) Validate() error {
	switch {
	case p.Memory < 8*1024 || p.Memory > 1024*1024:
		return fmt.Errorf("argon2id memory %d KiB: want 8 MiB to 1 GiB", p.Memory)
	case p.Time < 1 || p.Time > 16:
		return fmt.Errorf("argon2id time %d: want 1 to 16", p.Time)
	case p.Threads < 1:
		return fmt.Errorf("argon2id threads %d: want at least 1", p.Threads)
	}
	return nil
}

const (
	keyLen  = 32
	saltLen = 16
	// maxMemory bounds the memory a stored hash may ask for (KiB).
	maxMemory = 1024 * 1024
)

// MinLength and MaxLength bound a password.
const (
	MinLength = 8
	MaxLength = 1024
)

// Hash returns the argon2id PHC string of pw with DefaultParams.
func Hash(pw string) (string, error) { return HashWith(DefaultParams(), pw) }

// HashWith returns the argon2id PHC string of pw with params p.
func HashWith(p Params, pw string) (string, error) {
	if len(pw) < MinLength || len(pw) > MaxLength {
		return "", fmt.Errorf("password must be %d to %d characters", MinLength, MaxLength)
	}
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// phc is a parsed PHC string.
type phc struct {
	params    Params
	salt, key []byte
}

func parse(hash string) (phc, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || strings.ContainsAny(hash, "\r\n") {
		return phc{}, errors.New("unsupported password hash")
	}
	var h phc
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, errors.New("unsupported argon2 version")
	}
	p := &h.params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || n != 3 ||
		p.Memory < 1 || p.Memory > maxMemory || p.Time < 1 || p.Time > 16 || p.Threads < 1 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads) != parts[3] {
		return phc{}, errors.New("malformed argon2 parameters")
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return phc{}, errors.New("malformed salt")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, errors.New("malformed key")
	}
	return h, nil
}

// Check reports whether pw matches the PHC string hash.
func Check(hash, pw string) (bool, error) {
	h, err := parse(hash)
	if err != nil {
		return false, err
	}
	return h.check(pw), nil
}

func (h phc) check(pw string) bool {
	if len(pw) > MaxLength {
		return false
	}
	got := argon2.IDKey([]byte(pw), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// ErrBusy says hashing is at its memory budget and the caller waited long
// enough: answer 503 with Retry-After.
var ErrBusy error = busyError{}

type busyError struct{}

func (busyError) Error() string { return "too many sign-ins at once: try again in a moment" }

// RetryAfter is how long a client should wait before trying again.
func (busyError) RetryAfter() time.Duration { return time.Second }

// DefaultBudget bounds the memory of concurrent hashing (bytes).
const DefaultBudget = 256 << 20

// DefaultWait is how long a caller waits for room in the budget.
const DefaultWait = 2 * time.Second

// Hasher hashes and checks passwords within a memory budget: each hash in
// progress holds twice its argon2id memory against the budget (its own
// buffer, and the garbage of the one before it that the collector has not
// reclaimed yet), so the process's peak hashing memory stays within the
// budget. Callers past it wait up to a bounded time, then get ErrBusy.
type Hasher struct {
	params Params
	budget int64 // KiB
	sem    *semaphore.Weighted
	wait   time.Duration
}

// NewHasher returns a hasher making new hashes with p, with budget bytes of
// memory for concurrent hashing and callers waiting up to wait for room.
func NewHasher(p Params, budget int64, wait time.Duration) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	kib := budget >> 10
	if kib < 2*int64(p.Memory) {
		return nil, fmt.Errorf("password hashing budget %d MiB is below one hash (%d MiB)", budget>>20, 2*p.Memory>>10)
	}
	return &Hasher{params: p, budget: kib, sem: semaphore.NewWeighted(kib), wait: wait}, nil
}

// Params are the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Concurrency is how many hashes with the hasher's parameters run at once.
func (h *Hasher) Concurrency() int { return int(h.budget / (2 * int64(h.params.Memory))) }

// run runs fn holding 2×memory KiB of the budget.
func (h *Hasher) run(ctx context.Context, memory uint32, fn func()) error {
	w := min(2*int64(memory), h.budget)
	ctx, cancel := context.WithTimeout(ctx, h.wait)
	defer cancel()
	if err := h.sem.Acquire(ctx, w); err != nil {
		return ErrBusy
	}
	defer h.sem.Release(w)
	fn()
	return nil
}

// Hash returns the PHC string of pw with the hasher's parameters.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	var out string
	var herr error
	if err := h.run(ctx, h.params.Memory, func() { out, herr = HashWith(h.params, pw) }); err != nil {
		return "", err
	}
	return out, herr
}

// Check reports whether pw matches hash, and whether hash was made with
// other parameters than the hasher's (re-hash it after a success).
func (h *Hasher) Check(ctx context.Context, hash, pw string) (ok, stale bool, err error) {
	p, err := parse(hash)
	if err != nil {
		return false, false, err
	}
	if err := h.run(ctx, p.params.Memory, func() { ok = p.check(pw) }); err != nil {
		return false, false, err
	}
	return ok, p.params != h.params, nil
}
