// Package radius is camotp's RADIUS server (RFC 2865, PAP): a thin front
// door for VPN concentrators and in-car laptops (MDTs) over the sign-in
// service (*signin.Service). The password check, the methods, the
// throttles, replay and drift records and the audit log are the sign-in
// service's; this package only turns Access-Requests into its calls and
// its answers into Access-Challenge, Access-Accept and Access-Reject.
//
// Packets are parsed and encoded by layeh.com/radius; the
// Message-Authenticator (RFC 3579 §3.2), which that library does not
// compute, is required on every Access-Request and sent on every response
// (BlastRADIUS, CVE-2024-3596).
package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/signin"
)

// SignIn is the sign-in service the server fronts; *signin.Service
// satisfies it.
type SignIn interface {
	Login(ctx context.Context, username, pw, ip, trust string) (signin.LoginResult, error)
	// VerifyOnly checks a code and starts no camotp session: the NAS
	// keeps its own.
	VerifyOnly(ctx context.Context, pending, method, code, ip string) error
	SendCode(ctx context.Context, pending, method, ip string) (string, error)
}

// Clients lists the NASes allowed to send requests; a storage.Store
// satisfies it.
type Clients interface {
	RadiusClients(ctx context.Context) ([]model.RadiusClient, error)
}

// Counter counts requests by outcome (the result label of
// camotp_radius_requests_total); *metrics.Metrics satisfies it.
type Counter interface {
	RADIUSRequest(result string)
}

// Request outcomes, as the metrics label them. Every request that gets no
// answer is one of the drop results.
const (
	ResultAccept    = "accept"
	ResultChallenge = "challenge"
	ResultReject    = "reject"
	ResultStatus    = "status" // Status-Server answered (RFC 5997)
	// ResultUnknownClient: the source address is in no client's CIDR.
	ResultUnknownClient = "unknown-client"
	// ResultBadAuthenticator: the Message-Authenticator does not match the
	// client's secret (a wrong secret, or a forged packet).
	ResultBadAuthenticator = "bad-authenticator"
	// ResultNoAuthenticator: an Access-Request without a
	// Message-Authenticator, refused unless AllowLegacy.
	ResultNoAuthenticator = "no-message-authenticator"
	ResultMalformed       = "malformed"
	ResultUnsupported     = "unsupported" // a code other than Access-Request or Status-Server
	ResultDuplicate       = "duplicate"   // a retransmission: the cached answer is sent again, or none while in flight
	ResultBusy            = "busy"        // MaxInFlight requests being answered already
	ResultError           = "error"       // the sign-in service failed (storage, hashing budget): no answer, the NAS retries
)

// Config tunes the server.
type Config struct {
	// AllowLegacy accepts Access-Requests without a Message-Authenticator
	// (clients that predate RFC 3579 checks; exposed to BlastRADIUS).
	AllowLegacy bool
	// Separator splits "password<Separator>code" in one Access-Request for
	// clients that cannot answer a challenge ("" turns that mode off).
	Separator string
	// ChallengeTTL is how long a State may be answered (at most and by
	// default 5 minutes).
	ChallengeTTL time.Duration
	// ClientsTTL is how long the client list is cached (default 5 s);
	// InvalidateClients drops it at once.
	ClientsTTL time.Duration
	// MaxInFlight bounds the requests answered at once (default 256);
	// requests past it are dropped (the NAS retransmits).
	MaxInFlight int
	Now         func() time.Time
	Log         *slog.Logger
	Counter     Counter
}

// DefaultSeparator separates password and code in one request.
const DefaultSeparator = ","

// Server answers RADIUS Access-Requests over UDP.
type Server struct {
	svc     SignIn
	clients Clients
	cfg     Config

	challenges *challenges
	replies    *replyCache
	sem        chan struct{}

	clientMu  sync.Mutex
	clientAt  time.Time
	clientSet []model.RadiusClient // longest prefix first

	conn    net.PacketConn
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
}

// New returns a server over svc for the clients in clients.
func New(svc SignIn, clients Clients, cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ChallengeTTL <= 0 || cfg.ChallengeTTL > 5*time.Minute {
		cfg.ChallengeTTL = 5 * time.Minute
	}
	if cfg.ClientsTTL <= 0 {
		cfg.ClientsTTL = 5 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{svc: svc, clients: clients, cfg: cfg,
		challenges: newChallenges(cfg.ChallengeTTL, maxChallenges),
		replies:    newReplyCache(replyTTL),
		sem:        make(chan struct{}, cfg.MaxInFlight),
		ctx:        ctx, cancel: cancel, done: make(chan struct{})}
}

// Listen opens a UDP socket on addr and serves it until Close.
func (s *Server) Listen(addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("radius listen %s: %w", addr, err)
	}
	s.clientMu.Lock()
	s.conn = conn
	s.clientMu.Unlock()
	go s.Serve(conn)
	return nil
}

// Addr is the bound address once serving ("" before).
func (s *Server) Addr() string {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.conn == nil {
		return ""
	}
	return s.conn.LocalAddr().String()
}

// Serve answers requests arriving on conn until Close; it closes conn.
func (s *Server) Serve(conn net.PacketConn) error {
	s.clientMu.Lock()
	s.conn = conn
	s.clientMu.Unlock()
	defer close(s.done)
	buf := make([]byte, 4096+1) // one byte more than a packet may be: a longer datagram is refused
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.cfg.Log.Error("radius read", "err", err)
			return fmt.Errorf("radius read: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		if n > 4096 {
			s.count(ResultMalformed) // longer than RFC 2865 allows
			continue
		}
		src := ua.AddrPort()
		raw := append([]byte(nil), buf[:n]...)
		// Junk (unknown source, bad Message-Authenticator) is dropped here,
		// before it can take an in-flight slot from a real request.
		sc, result := s.screen(s.ctx, raw, src)
		if result != "" {
			s.count(result)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.count(ResultBusy)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			reply, result := s.answer(s.ctx, raw, src, sc)
			s.count(result)
			if reply != nil {
				if _, err := conn.WriteTo(reply, from); err != nil && s.ctx.Err() == nil {
					s.cfg.Log.Warn("radius write", "to", src.String(), "err", err)
				}
			}
		}()
	}
}

// Close stops serving and waits for the requests being answered.
func (s *Server) Close() error {
	s.closing.Do(func() {
		s.cancel()
		s.clientMu.Lock()
		conn := s.conn
		s.clientMu.Unlock()
		if conn != nil {
			conn.Close()
			<-s.done
		}
		s.wg.Wait()
	})
	return nil
}

func (s *Server) count(result string) {
	if s.cfg.Counter != nil {
		s.cfg.Counter.RADIUSRequest(result)
	}
}

// InvalidateClients makes the next request read the client list again
// (the admin API calls it after a change).
func (s *Server) InvalidateClients() {
	s.clientMu.Lock()
	s.clientAt = time.Time{}
	s.clientSet = nil
	s.clientMu.Unlock()
}

// client returns the client whose CIDR holds addr, the most specific one
// when several do.
func (s *Server) client(ctx context.Context, addr netip.Addr) (model.RadiusClient, bool, error) {
	addr = addr.Unmap()
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	now := s.cfg.Now()
	if s.clientSet == nil || now.Sub(s.clientAt) >= s.cfg.ClientsTTL || now.Before(s.clientAt) {
		list, err := s.clients.RadiusClients(ctx)
		if err != nil {
			return model.RadiusClient{}, false, fmt.Errorf("radius clients: %w", err)
		}
		sortBySpecificity(list)
		s.clientSet, s.clientAt = append([]model.RadiusClient{}, list...), now
	}
	for _, c := range s.clientSet {
		if c.CIDR.Contains(addr) {
			return c, true, nil
		}
	}
	return model.RadiusClient{}, false, nil
}

// sortBySpecificity orders clients longest prefix first.
func sortBySpecificity(list []model.RadiusClient) {
	slices.SortStableFunc(list, func(a, b model.RadiusClient) int { return b.CIDR.Bits() - a.CIDR.Bits() })
}
