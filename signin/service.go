package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage"
)

// Directory is what the sign-in service reads about users and their cameras.
type Directory interface {
	User(ctx context.Context, username string) (model.User, string, error)
	CameraOf(ctx context.Context, username string) (model.Camera, error)
	ActiveSeed(ctx context.Context, serial string) (device.Seed, error)
}

// TokenStore keeps pending-MFA, session and trusted-browser tokens.
type TokenStore interface {
	CreateToken(ctx context.Context, kind, username, method, ip string, ttl time.Duration) (string, error)
	LookupToken(ctx context.Context, kind, raw string) (model.Token, error)
	// PendingCheck reads the live pending token raw and, in the same
	// snapshot, what checking a code of its user's camera needs.
	PendingCheck(ctx context.Context, raw string) (model.PendingCheck, error)
	DeleteToken(ctx context.Context, raw string) error
	// ExchangeToken atomically takes the replay record use (when not
	// nil; storage.ErrStepUsed when its step was used already), ends
	// old, creates a token, writes e and settles the attempt's throttle
	// counters as a success (an unreserved attempt refused by them:
	// *storage.ThrottledError, nothing done).
	ExchangeToken(ctx context.Context, old, kind, username, method, ip string, ttl time.Duration, use *model.StepUse, e model.AuditEntry, settle model.Settlement) (string, error)
	// ConsumeToken is ExchangeToken creating no token.
	ConsumeToken(ctx context.Context, old string, use *model.StepUse, e model.AuditEntry, settle model.Settlement) error
}

// Auditor appends to the audit log.
type Auditor interface {
	Audit(ctx context.Context, e model.AuditEntry) error
}

// Store is everything the sign-in service keeps; a storage.Store satisfies it.
type Store interface {
	Directory
	TokenStore
	Auditor
	CodeStore
	ThrottleStore
	MethodStore
	PasswordStore
	UserLister
	ThrottleAdmin
	ClockStore
	// Changes tells the other nodes that the policy changed, and this
	// node that another one changed it.
	storage.Changes
}

// Method names, as the API, the audit log and the metrics spell them.
const (
	// MethodBodycam is the body-camera MFA method.
	MethodBodycam = "bodycam"
	// MethodPassword is the password step.
	MethodPassword = "password"
	// MethodTrustedBrowser is MFA skipped by a "Keep me signed in" browser.
	MethodTrustedBrowser = "trusted-browser"
)

// Observer is told of each sign-in step's outcome, for metrics. Its methods
// are called inline and must not block.
type Observer interface {
	// SignIn reports one attempt: step is "password" or "mfa", method the
	// MFA method (or "password"), result e.g. "ok", "failed", "blocked".
	SignIn(step, method, result string)
	// Lockout reports that failures just blocked an (account, IP) pair or an
	// account on step ("password", "otp", or "send" for sent codes).
	Lockout(step string)
}

// Config tunes the sign-in service.
type Config struct {
	// PendingTTL bounds the time between password and code (≤ 5 min).
	PendingTTL time.Duration
	// SessionTTL is a session's lifetime.
	SessionTTL time.Duration
	// TrustFor is how long "Keep me signed in" skips MFA on a browser.
	TrustFor time.Duration
	// Window and ResyncRange: see Checker.
	Window, ResyncRange int64
	Limits              Limits
	// Issuer names the service in authenticator apps (default "camotp").
	Issuer string
	// Argon2 are the parameters of new password hashes (zero value:
	// password.DefaultParams()); a user whose hash was made with others is
	// re-hashed at the next successful sign-in.
	Argon2 password.Params
	// HashBudget bounds the memory of concurrent password hashing in bytes
	// (zero: password.DefaultBudget); HashWait is how long a sign-in waits
	// for room before it is refused as busy (zero: password.DefaultWait).
	HashBudget int64
	HashWait   time.Duration
	// HashesPerSource bounds the password checks one source (address, or
	// IPv6 /64) may have in progress at once (zero:
	// DefaultHashesPerSource); past it a sign-in is refused as busy (503).
	HashesPerSource int
	// SentCodeTTLEmail and SentCodeTTLPhone are how long a code sent by
	// email, and by text message or phone call, is valid (zero:
	// SentCodeTTL, the product's 60 s; from MinSentCodeTTL to
	// MaxSentCodeTTL), for agencies whose mail is slow.
	SentCodeTTLEmail, SentCodeTTLPhone time.Duration
	// ClockFresh is how old a camera's signed clock report may be and
	// still centre the window its codes are checked in (zero:
	// DefaultClockFresh; negative: reports are never used).
	ClockFresh time.Duration
}

// DefaultConfig returns the product defaults.
func DefaultConfig() Config {
	return Config{PendingTTL: 5 * time.Minute, SessionTTL: 12 * time.Hour, TrustFor: 7 * 24 * time.Hour,
		Window: 1, ResyncRange: 10, Limits: DefaultLimits()}
}

// Errors the sign-in flow returns; the web page and API map them.
var (
	ErrBadCredentials = errors.New("invalid username or password")
	ErrBadToken       = errors.New("sign-in expired or unknown: start again with your password")
	ErrNoMethod       = errors.New("no verification method is available: your account has no provisioned body camera assigned; contact your fleet administrator")
)

// BlockedError says the attempt is refused for RetryAfter.
type BlockedError struct{ RetryAfter time.Duration }

// Error says what the user can do, in the words the web page and the API
// show them.
func (e *BlockedError) Error() string {
	if e.RetryAfter < time.Minute { // while attempts are in flight: no block to lift
		n := max(int((e.RetryAfter+time.Second-1)/time.Second), 1)
		if n == 1 {
			return "Too many attempts at once. Please try again in 1 second."
		}
		return fmt.Sprintf("Too many attempts at once. Please try again in %d seconds.", n)
	}
	m := int((e.RetryAfter + time.Minute - 1) / time.Minute)
	unit := "minutes"
	if m == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("You have reached the limit of attempts. Please try again in %d %s or ask your administrator to unblock you.", m, unit)
}

// CodeError is a refused code.
type CodeError struct {
	AttemptsLeft int
	ClockOff     bool
	Replayed     bool
}

func (e *CodeError) Error() string {
	if e.ClockOff {
		return "camera clock is off — dock the camera, then enter the next code it shows"
	}
	return fmt.Sprintf("Invalid one-time password (attempts left: %d)", e.AttemptsLeft)
}

// Service runs the sign-in flow for every front door (pages, JSON API,
// OpenID Connect, RADIUS).
type Service struct {
	st       Store
	checker  *Checker
	reg      *Regulator
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	obs      Observer
	sender   Sender
	policy   atomic.Pointer[Policy] // cached organisation policy
	policyMu sync.Mutex             // serialises loading and changing it
	hasher   *password.Hasher
	dummy    string            // a hash checked for unknown users, so timing does not tell
	methods  map[string]Method // the MFA methods by name
	order    []Method          // the same in challenge order
	share    *sourceShare      // password checks in progress per source
}

// NewService returns the sign-in service.
func NewService(st Store, cfg Config, now func() time.Time, log *slog.Logger) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "camotp"
	}
	if cfg.PendingTTL <= 0 || cfg.PendingTTL > 5*time.Minute {
		cfg.PendingTTL = 5 * time.Minute
	}
	if cfg.Argon2 == (password.Params{}) {
		cfg.Argon2 = password.DefaultParams()
	}
	if cfg.HashBudget == 0 {
		cfg.HashBudget = password.DefaultBudget
	}
	if cfg.HashWait == 0 {
		cfg.HashWait = password.DefaultWait
	}
	if cfg.HashesPerSource <= 0 {
		cfg.HashesPerSource = DefaultHashesPerSource
	}
	for _, ttl := range []*time.Duration{&cfg.SentCodeTTLEmail, &cfg.SentCodeTTLPhone} {
		if *ttl == 0 {
			*ttl = SentCodeTTL
		}
		if *ttl < MinSentCodeTTL || *ttl > MaxSentCodeTTL {
			return nil, fmt.Errorf("sent code lifetime %v: want %v to %v", *ttl, MinSentCodeTTL, MaxSentCodeTTL)
		}
	}
	hasher, err := password.NewHasher(cfg.Argon2, cfg.HashBudget, cfg.HashWait)
	if err != nil {
		return nil, err
	}
	dummy, err := password.HashWith(cfg.Argon2, "camotp-timing-equaliser")
	if err != nil {
		return nil, err
	}
	s := &Service{
		st: st, cfg: cfg, now: now, log: log, dummy: dummy, hasher: hasher, share: newSourceShare(cfg.HashesPerSource),
		checker: &Checker{Store: st, Window: cfg.Window, ResyncRange: cfg.ResyncRange},
		reg:     &Regulator{Store: st, Limits: cfg.Limits},
	}
	st.Watch(storage.TopicPolicy, s.forgetPolicy) // for the store's life, as the service's
	s.order = s.newMethods()
	s.methods = map[string]Method{}
	for _, m := range s.order {
		s.methods[m.Name()] = m
	}
	return s, nil
}

// SetObserver sets the observer of sign-in outcomes; call it before serving.
func (s *Service) SetObserver(o Observer) { s.obs = o }

// rehash stores a new hash of pw, made with the current parameters, for
// user whose stored hash used others. A failure is logged: the old hash
// still works, and the next sign-in tries again.
func (s *Service) rehash(ctx context.Context, user, pw string) {
	h, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.st.SetPassword(ctx, user, h)
	}
	if err != nil {
		s.log.Warn("re-hash password with current parameters", "user", user, "err", err)
		return
	}
	s.log.Info("password re-hashed with current parameters", "user", user)
}

// HashPassword hashes pw for storing with the configured parameters,
// within the hashing memory budget (password.ErrBusy past it).
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	return s.hasher.Hash(ctx, pw)
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// audit records an event in the audit log and tells the observer of
// sign-in steps (action "login.<step>"). A lost entry is logged and
// counted by the store's hook; a step that lets the user further must
// fail closed on the error.
func (s *Service) audit(ctx context.Context, user, action, method, result, ip, detail string) error {
	if step, ok := strings.CutPrefix(action, "login."); ok && s.obs != nil {
		s.obs.SignIn(step, method, result)
	}
	// What happened is recorded whether or not the client waits for it.
	return s.st.Audit(context.WithoutCancel(ctx), model.AuditEntry{Actor: user, Action: action, Subject: user, Result: result, SourceIP: ip, Detail: detail})
}

// LoginResult is the outcome of a correct password.
type LoginResult struct {
	Username string
	// Session is set when no MFA is needed (trusted browser).
	Session string
	// Pending is the short-lived token for the MFA step.
	Pending string
	// Method is the method the challenge opens with, or MethodSetup when
	// the user must set one up first.
	Method string
	// Methods are what the user can do at the MFA step.
	Methods UserMethods
	// Model is the assigned camera's model (for the how-to steps).
	Model device.Model
}

// Login checks username and password from ip. trust is a trusted-browser
// token ("" when none): valid for this user, MFA is skipped. The attempt
// takes a throttle slot before the password is hashed, so neither a burst
// nor a blocked source costs a hash.
func (s *Service) Login(ctx context.Context, username, pw, ip, trust string) (LoginResult, error) {
	username = clientText(username, 256)
	a, err := s.reserve(ctx, "password", username, ip)
	if err != nil {
		if errors.As(err, new(*BlockedError)) {
			s.audit(ctx, username, "login.password", MethodPassword, "blocked", ip, "")
		}
		return LoginResult{}, err
	}
	defer a.release(ctx)
	user, hash, err := s.st.User(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return LoginResult{}, err
	}
	if !known {
		hash = s.dummy
	}
	src := sourceOf(ip)
	if !s.share.take(src) {
		return LoginResult{}, password.ErrBusy // the slot is released: not a guess
	}
	ok, stale, err := s.hasher.Check(ctx, hash, pw)
	s.share.done(src)
	if err != nil {
		return LoginResult{}, err
	}
	if !known || !ok {
		d, err := a.fail(ctx)
		if err != nil {
			return LoginResult{}, err
		}
		s.audit(ctx, username, "login.password", MethodPassword, "failed", ip, "")
		if d.Blocked {
			return LoginResult{}, &BlockedError{RetryAfter: d.RetryAfter}
		}
		return LoginResult{}, ErrBadCredentials
	}
	if err := a.succeed(ctx); err != nil {
		return LoginResult{}, err
	}
	if err := s.audit(ctx, username, "login.password", MethodPassword, "ok", ip, ""); err != nil {
		return LoginResult{}, err // no sign-in goes unrecorded
	}
	if stale {
		s.rehash(ctx, user.Username, pw)
	}
	res := LoginResult{Username: user.Username}
	if trust != "" {
		if t, err := s.st.LookupToken(ctx, model.TokenTrust, trust); err == nil && t.Username == user.Username {
			if err := s.audit(ctx, username, "login.mfa", MethodTrustedBrowser, "ok", ip, "trusted browser"); err != nil {
				return LoginResult{}, err
			}
			res.Session, err = s.st.CreateToken(ctx, model.TokenSession, user.Username, MethodTrustedBrowser, ip, s.cfg.SessionTTL)
			return res, err
		}
	}
	um, err := s.Methods(ctx, user.Username)
	if err != nil {
		return LoginResult{}, err
	}
	res.Methods, res.Method, res.Model = um, um.Default, um.Camera
	if len(um.Available) == 0 {
		pol, err := s.Policy(ctx)
		if err != nil {
			return LoginResult{}, err
		}
		switch {
		case !pol.RequireMFA:
			// The organisation does not require MFA and the user has none.
			if err := s.audit(ctx, username, "login.mfa", "none", "not required", ip, ""); err != nil {
				return LoginResult{}, err
			}
			res.Session, err = s.st.CreateToken(ctx, model.TokenSession, user.Username, MethodPassword, ip, s.cfg.SessionTTL)
			return res, err
		case len(um.CanSetUp) == 0:
			s.audit(ctx, username, "login.mfa", "none", "no method", ip, "")
			return LoginResult{}, ErrNoMethod
		}
		res.Method = MethodSetup
		if err := s.audit(ctx, username, "login.mfa", "none", "setup required", ip, strings.Join(um.CanSetUp, ",")); err != nil {
			return LoginResult{}, err
		}
	}
	res.Pending, err = s.st.CreateToken(ctx, model.TokenPending, user.Username, res.Method, ip, s.cfg.PendingTTL)
	return res, err
}

// camera returns the user's camera when it can verify codes.
func (s *Service) camera(ctx context.Context, username string) (model.Camera, error) {
	cam, err := s.st.CameraOf(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return model.Camera{}, ErrNoMethod
	}
	if err != nil {
		return model.Camera{}, err
	}
	if cam.State != model.StateProvisioned {
		return model.Camera{}, ErrNoMethod
	}
	return cam, nil
}

// Pending returns the user of a pending token and what they can do at the
// MFA step; Methods.Default is the token's method (MethodSetup when the
// user must set one up first).
func (s *Service) Pending(ctx context.Context, pending string) (string, UserMethods, error) {
	t, err := s.st.LookupToken(ctx, model.TokenPending, pending)
	if err != nil {
		return "", UserMethods{}, ErrBadToken
	}
	um, err := s.Methods(ctx, t.Username)
	if err != nil {
		return t.Username, UserMethods{}, err
	}
	if t.Method == MethodSetup {
		um.Default = MethodSetup
	}
	return t.Username, um, nil
}

// Verify checks code with the method the pending sign-in opened with.
func (s *Service) Verify(ctx context.Context, pending, code, ip string) (string, error) {
	return s.VerifyMethod(ctx, pending, "", code, ip)
}

// VerifyMethod checks the code typed for a pending sign-in from ip with
// method ("" for the one the challenge opened with) and returns a session
// token. A camera code is checked against the seed of the camera assigned
// to this user, and no other; an app code against the user's own app.
func (s *Service) VerifyMethod(ctx context.Context, pending, method, code, ip string) (string, error) {
	return s.verify(ctx, pending, method, code, ip, true)
}

// VerifyOnly is VerifyMethod for a front door that keeps no camotp
// session (the RADIUS server: the NAS keeps its own): the same checks,
// throttles, replay records and audit row, and a passed step ends the
// pending sign-in — token, audit row and throttle counters in one commit —
// without starting a session.
func (s *Service) VerifyOnly(ctx context.Context, pending, method, code, ip string) error {
	_, err := s.verify(ctx, pending, method, code, ip, false)
	return err
}

// verify runs VerifyMethod, starting a session when session is set.
func (s *Service) verify(ctx context.Context, pending, method, code, ip string, session bool) (string, error) {
	// One read: the pending sign-in and what checking a camera code needs.
	pc, err := s.st.PendingCheck(ctx, pending)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrBadToken
	}
	if err != nil {
		return "", err
	}
	t, user := pc.Token, pc.Token.Username
	if t.Method == MethodSetup {
		return "", ErrSetupRequired
	}
	if method == "" {
		method = t.Method
	}
	m, ok := s.methods[method]
	if !ok {
		return "", ErrNoMethod
	}
	blocked := func(err error) (string, error) {
		if errors.As(err, new(*BlockedError)) {
			s.audit(ctx, user, "login.mfa", method, "blocked", ip, method)
		}
		return "", err
	}
	ans := Answer{User: user, Code: code, IP: ip, Camera: pc.Camera}
	var res CheckResult
	var detail string
	pm, pure := m.(pureChecker)
	if pure {
		// A camera or app code is first checked within the window, with
		// the same work for every code, and a right one passes in one
		// commit that also checks its throttle counters (unreserved).
		a := s.unreserved("otp", user, ip)
		ans.Now = a.now
		if res, detail, err = pm.checkWindow(ctx, ans); err != nil {
			return "", err
		}
		if res.Outcome == Accepted {
			sess, err := s.accept(ctx, pending, user, method, t.Method, ip, detail, res, a, session)
			if err == nil && method == MethodBodycam {
				s.noteClock(ctx, ans.Camera, res, ans.Now)
			}
			if te := (*storage.ThrottledError)(nil); errors.As(err, &te) {
				return blocked(&BlockedError{RetryAfter: te.RetryAfter})
			}
			if !errors.Is(err, storage.ErrStepUsed) {
				return sess, err
			}
			// A concurrent use of the same code took its step first: this
			// use is a replay, and counted as a failure.
			res.Outcome = Replayed
		}
	}
	// Any other code takes its slot before it is evaluated further (a
	// search beyond the window, whose work depends on the code) or
	// answered: a refused right code and a refused wrong one take the
	// same steps, a refused slot (the same statement) then a read.
	a, err := s.reserve(ctx, "otp", user, ip)
	if err != nil {
		return blocked(err)
	}
	defer a.release(ctx)
	if !pure {
		ans.Now = a.now
	}
	if !pure || res.Outcome == Invalid {
		// Not checked yet, or in no step of the window: the whole check,
		// beyond the window too, now that the attempt holds its slot.
		if res, detail, err = m.Check(ctx, ans); err != nil {
			return "", err
		}
	}
	if res.Outcome == Accepted { // a code of a method checked with its slot, or one confirming a resync
		sess, err := s.accept(ctx, pending, user, method, t.Method, ip, detail, res, a, session)
		if err == nil && method == MethodBodycam {
			s.noteClock(ctx, ans.Camera, res, ans.Now)
		}
		if !errors.Is(err, storage.ErrStepUsed) {
			return sess, err
		}
		res.Outcome = Replayed
	}
	if res.Outcome == ClockOff {
		if err := s.checker.Record(ctx, res); err != nil {
			return "", err
		}
		s.audit(ctx, user, "login.mfa", method, "clock-off", ip, detail)
		return "", &CodeError{ClockOff: true, AttemptsLeft: a.taken.AttemptsLeft + 1} // not counted: the slot is released
	}
	d, err := a.fail(ctx)
	if err != nil {
		return "", err
	}
	s.audit(ctx, user, "login.mfa", method, res.Outcome.String(), ip, detail)
	if d.Blocked {
		return "", &BlockedError{RetryAfter: d.RetryAfter}
	}
	return "", &CodeError{AttemptsLeft: d.AttemptsLeft, Replayed: res.Outcome == Replayed}
}

// accept ends a pending sign-in whose code res passed with method (opened
// with opened): the code's replay record, the session (or none), the audit
// row and the throttle success in one commit. storage.ErrStepUsed says the
// code's step was used meanwhile and nothing happened.
func (s *Service) accept(ctx context.Context, pending, user, method, opened, ip, detail string, res CheckResult, a *attempt, session bool) (string, error) {
	// The success is recorded on the throttle counters in the commit
	// that ends the step.
	if res.Resynced {
		detail += " (resynced)"
	}
	if method == MethodEmail {
		// product §1.3: in an organisation that uses body cameras, a
		// user with no camera and only email must set up a method
		// before the sign-in finishes; email proved who they are.
		if setup, err := s.mustSetUp(ctx, user); err != nil {
			return "", err
		} else if len(setup) > 0 {
			tok, err := s.st.ExchangeToken(context.WithoutCancel(ctx), pending, model.TokenPending, user, MethodSetup, ip, s.cfg.PendingTTL,
				res.Use, model.AuditEntry{Actor: user, Action: "login.mfa", Subject: user, Result: "setup required", SourceIP: ip, Detail: detail},
				a.settlement())
			if err != nil {
				return "", lostExchange(err)
			}
			a.settled = true
			return "", &SetupNeeded{Pending: tok, Methods: setup}
		}
	}
	sess, err := s.finish(ctx, pending, user, method, ip, detail, a, res.Use, session)
	if err != nil {
		return "", err
	}
	if method != MethodBackup && method != opened {
		if err := s.st.SetLastMethod(ctx, user, method); err != nil {
			s.log.Warn("record last method", "user", user, "err", err)
		}
	}
	return sess, nil
}

// SetupNeeded ends a passed email step when the user must still set up a
// method: Pending is a new pending token for the set-up (MethodSetup).
type SetupNeeded struct {
	Pending string
	Methods []string
}

func (e *SetupNeeded) Error() string { return ErrSetupRequired.Error() }

// Unwrap makes errors.Is(err, ErrSetupRequired) hold.
func (e *SetupNeeded) Unwrap() error { return ErrSetupRequired }

// mustSetUp returns the methods user must choose from to set one up before
// finishing sign-in, when the organisation uses body cameras, the user has
// none, and registered nothing (email alone does not do): else nil.
func (s *Service) mustSetUp(ctx context.Context, user string) ([]string, error) {
	pol, err := s.Policy(ctx)
	if err != nil || !pol.Enabled(MethodBodycam) {
		return nil, err
	}
	um, err := s.Methods(ctx, user)
	if err != nil || slices.Contains(um.Available, MethodBodycam) || len(um.Registered) > 0 {
		return nil, err
	}
	return um.CanSetUp, nil
}

// enabled is ErrNotEnabled when the organisation has not enabled method.
func (s *Service) enabled(ctx context.Context, method string) error {
	pol, err := s.Policy(ctx)
	if err != nil {
		return err
	}
	if !pol.Enabled(method) {
		return ErrNotEnabled
	}
	return nil
}

// pendingUser is the user of a pending sign-in.
func (s *Service) pendingUser(ctx context.Context, pending string) (string, error) {
	t, err := s.st.LookupToken(ctx, model.TokenPending, pending)
	if err != nil {
		return "", ErrBadToken
	}
	return t.Username, nil
}

// SetupApp starts setting up an authenticator app during a pending
// sign-in whose user must set up a method first.
func (s *Service) SetupApp(ctx context.Context, pending string) (AppEnrolment, error) {
	user, err := s.pendingUser(ctx, pending)
	if err != nil {
		return AppEnrolment{}, err
	}
	return s.StartApp(ctx, user)
}

// SetupPhone starts confirming a phone number during a pending sign-in
// whose user must set up a method first.
func (s *Service) SetupPhone(ctx context.Context, pending, phone, ip string) error {
	user, err := s.pendingUser(ctx, pending)
	if err != nil {
		return err
	}
	return s.StartPhone(ctx, user, phone, ip)
}

// FinishSetup confirms the method being set up during a pending sign-in
// (MethodApp: a first code from the app; SetupPhone: the code sent to the
// phone) and finishes the sign-in: it returns a session token.
func (s *Service) FinishSetup(ctx context.Context, pending, method, code, ip string) (string, error) {
	user, err := s.pendingUser(ctx, pending)
	if err != nil {
		return "", err
	}
	last := MethodApp
	switch method {
	case MethodApp, "":
		err = s.ConfirmApp(ctx, user, code, ip)
	case SetupPhone:
		err, last = s.ConfirmPhone(ctx, user, code, ip), MethodSMS
	default:
		return "", ErrNoMethod
	}
	if err != nil {
		return "", err
	}
	if err := s.st.SetLastMethod(ctx, user, last); err != nil {
		s.log.Warn("record last method", "user", user, "err", err)
	}
	return s.finish(ctx, pending, user, last, ip, method+" set up at sign-in", nil, nil, true)
}

// finish ends a passed MFA step: the code's replay record use (nil when
// none is left to take) is taken, the pending token becomes a session (or,
// without session, simply ends), the audit log says so and the successful
// attempt a (nil when settled already) clears its throttle counters, in
// one commit; the observer is told. It returns the session token ("" when
// none was asked for); storage.ErrStepUsed when use's step was used
// already (nothing happened).
func (s *Service) finish(ctx context.Context, pending, user, method, ip, detail string, a *attempt, use *model.StepUse, session bool) (string, error) {
	var settle model.Settlement
	if a != nil {
		settle = a.settlement()
		ctx = context.WithoutCancel(ctx) // the attempt was evaluated: settle it whatever the client does
	}
	e := model.AuditEntry{Actor: user, Action: "login.mfa", Subject: user, Result: "ok", SourceIP: ip, Detail: detail}
	var sess string
	var err error
	if session {
		sess, err = s.st.ExchangeToken(ctx, pending, model.TokenSession, user, method, ip, s.cfg.SessionTTL, use, e, settle)
	} else {
		err = s.st.ConsumeToken(ctx, pending, use, e, settle)
	}
	if err != nil {
		return "", lostExchange(err)
	}
	if a != nil {
		a.settled = true
	}
	if s.obs != nil {
		s.obs.SignIn("mfa", method, "ok")
	}
	return sess, nil
}

// clientText makes a name a client sent storable in every backend: valid
// UTF-8 without NUL (U+FFFD in place of bad bytes), at most max bytes, cut
// on a character boundary. No real username changes.
func clientText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// lostExchange names the error of a pending token that another request
// (another node, another method) exchanged first: the sign-in it belonged
// to is over, and this request starts none.
func lostExchange(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return ErrBadToken
	}
	return err
}

// Trust makes a trusted-browser token for username ("Keep me signed in").
func (s *Service) Trust(ctx context.Context, username, ip string) (string, error) {
	return s.st.CreateToken(ctx, model.TokenTrust, username, "", ip, s.cfg.TrustFor)
}

// Session returns the user of a session token.
func (s *Service) Session(ctx context.Context, token string) (string, error) {
	t, err := s.st.LookupToken(ctx, model.TokenSession, token)
	if err != nil {
		return "", err
	}
	return t.Username, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token, ip string) {
	if user, err := s.Session(ctx, token); err == nil {
		s.st.DeleteToken(ctx, token)
		s.audit(ctx, user, "logout", "", "ok", ip, "")
	}
}
