package signin

import "sync"

// DefaultHashesPerSource is how many password checks one source may have
// in progress at once by default.
const DefaultHashesPerSource = 4

// sourceShare bounds the password checks in progress per source, so that
// one host sending logins for made-up names (which no per-account counter
// stops) cannot take the whole hashing budget from everyone else.
type sourceShare struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newSourceShare(max int) *sourceShare { return &sourceShare{max: max, n: map[string]int{}} }

// take claims a check for source; false when source is at its share.
func (s *sourceShare) take(source string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[source] >= s.max {
		return false
	}
	s.n[source]++
	return true
}

// done gives back a check taken for source.
func (s *sourceShare) done(source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[source]--; s.n[source] <= 0 {
		delete(s.n, source)
	}
}
