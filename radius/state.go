package radius

import (
	"crypto/rand"
	"sync"
	"time"
)

// A challenge is kept in this process's memory, not in the database: the
// pending sign-in it stands for is in the database already (the sign-in
// service's pending token), and the State only names it for the NAS. With
// several camotp nodes a NAS must send both requests of one sign-in to the
// same node (primary/secondary server lists do; a fail-over in the middle
// of a challenge means typing the password again).

// maxChallenges bounds the challenges held at once; only a correct password
// makes one, so the bound is never reached by guessing.
const maxChallenges = 100_000

// challenge is an Access-Challenge waiting for its answer.
type challenge struct {
	pending string // the sign-in service's pending token
	user    string
	client  string // the RADIUS client that was challenged
	method  string // the method the code is checked with
	backup  bool   // the user has backup codes: a reply that is not a 6-digit code is tried as one
	expires time.Time
}

// challenges maps a State (16 random bytes) to its challenge: each is
// answered at most once and only within the TTL.
type challenges struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	m     map[string]challenge
	order []expiring // by expiry, for sweeping
}

type expiring struct {
	key     string
	expires time.Time
}

func newChallenges(ttl time.Duration, max int) *challenges {
	return &challenges{ttl: ttl, max: max, m: map[string]challenge{}}
}

// put stores c and returns its State, or nil when the table is full.
func (cs *challenges) put(c challenge, now time.Time) []byte {
	state := make([]byte, 16)
	rand.Read(state)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sweep(now)
	if len(cs.m) >= cs.max {
		return nil
	}
	c.expires = now.Add(cs.ttl)
	cs.m[string(state)] = c
	cs.order = append(cs.order, expiring{string(state), c.expires})
	return state
}

// take removes and returns the challenge of state when it was made for
// client and user and has not expired. A State presented by another
// client or for another user is refused and left in place: the State
// travels in clear text, and a NAS that saw it must not be able to cancel
// someone else's sign-in.
func (cs *challenges) take(state []byte, client, user string, now time.Time) (challenge, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.m[string(state)]
	if !ok || c.client != client || c.user != user {
		return challenge{}, false
	}
	delete(cs.m, string(state))
	return c, now.Before(c.expires)
}

// sweep drops expired challenges (the order queue is by expiry because the
// TTL is fixed).
func (cs *challenges) sweep(now time.Time) {
	i := 0
	for ; i < len(cs.order) && !now.Before(cs.order[i].expires); i++ {
		if c, ok := cs.m[cs.order[i].key]; ok && c.expires.Equal(cs.order[i].expires) {
			delete(cs.m, cs.order[i].key)
		}
	}
	cs.order = cs.order[i:]
}

// len is the number of challenges held.
func (cs *challenges) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

// replyTTL is how long an answer is kept for retransmissions of its
// request: longer than a NAS's retries (typically 3 × 5 s).
const replyTTL = 30 * time.Second

// replyCache detects retransmissions (RFC 5080 §2.2.2): a request with the
// same source, Identifier and Request Authenticator as one seen within
// replyTTL is not evaluated again — a retransmitted code would otherwise
// be refused as replayed after the first copy signed in. The cached
// answer is sent again; while the first copy is still being answered, the
// copy is dropped.
type replyCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	m     map[string]*cachedReply
	order []expiring
}

type cachedReply struct {
	reply   []byte // nil while in flight
	expires time.Time
}

func newReplyCache(ttl time.Duration) *replyCache {
	return &replyCache{ttl: ttl, m: map[string]*cachedReply{}}
}

// begin claims key at now. It returns (nil, true) when the caller must
// answer the request, or the cached answer (nil while in flight) and false
// for a retransmission.
func (rc *replyCache) begin(key string, now time.Time) ([]byte, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.sweep(now)
	if e, ok := rc.m[key]; ok {
		return e.reply, false
	}
	exp := now.Add(rc.ttl)
	rc.m[key] = &cachedReply{expires: exp}
	rc.order = append(rc.order, expiring{key, exp})
	return nil, true
}

// finish records the answer of key; a nil reply forgets the request, so a
// retransmission is evaluated (the first copy got no answer).
func (rc *replyCache) finish(key string, reply []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e, ok := rc.m[key]
	if !ok {
		return
	}
	if reply == nil {
		delete(rc.m, key)
		return
	}
	e.reply = reply
}

func (rc *replyCache) sweep(now time.Time) {
	i := 0
	for ; i < len(rc.order) && !now.Before(rc.order[i].expires); i++ {
		if e, ok := rc.m[rc.order[i].key]; ok && e.expires.Equal(rc.order[i].expires) {
			delete(rc.m, rc.order[i].key)
		}
	}
	rc.order = rc.order[i:]
}
