package signin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// More method names.
const (
	// MethodApp is an authenticator app (TOTP) the user set up.
	MethodApp = model.MethodApp
	// MethodBackup is a single-use backup code.
	MethodBackup = "backup"
	// MethodSetup marks the pending sign-in of a user who must set up a
	// method before finishing it.
	MethodSetup = "setup"
	// MethodSMS, MethodCall and MethodEmail send a random code, valid
	// once for Service.SentCodeTTL.
	MethodSMS   = "sms"
	MethodCall  = "call"
	MethodEmail = "email"
	// SetupPhone is what a user sets up for text and call together.
	SetupPhone = model.MethodPhone
)

// SentCodeTTL is how long a code sent by text, call or email is valid
// unless configured otherwise (Config.SentCodeTTLEmail, SentCodeTTLPhone):
// the product's 60 s.
const SentCodeTTL = 60 * time.Second

// Bounds of a configured sent code lifetime.
const (
	MinSentCodeTTL = 30 * time.Second
	MaxSentCodeTTL = 15 * time.Minute
)

// SentCodeTTL is how long a code sent on channel (MethodEmail, MethodSMS,
// MethodCall) is valid.
func (s *Service) SentCodeTTL(channel string) time.Duration {
	if channel == MethodEmail {
		return s.cfg.SentCodeTTLEmail
	}
	return s.cfg.SentCodeTTLPhone
}

// Lifetime says a duration as a message tells it ("60 seconds",
// "2 minutes", "90 seconds").
func Lifetime(d time.Duration) string {
	if d >= 2*time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return fmt.Sprintf("%d seconds", d/time.Second)
}

// OrgMethods are the methods an organisation can enable, in the order a
// challenge offers them.
var OrgMethods = []string{MethodBodycam, MethodApp, MethodSMS, MethodCall, MethodEmail}

// implemented are the OrgMethods this build can check.
var implemented = map[string]bool{MethodBodycam: true, MethodApp: true, MethodSMS: true, MethodCall: true, MethodEmail: true}

// sends are the methods that send a code.
var sends = map[string]bool{MethodSMS: true, MethodCall: true, MethodEmail: true}

// Sends tells whether method sends a code (text, call, email) that the
// user asks for before typing it.
func Sends(method string) bool { return sends[method] }

// Organisation setting keys.
const (
	settingRequireMFA = "require_mfa"
	settingMethods    = "methods"
)

// Errors of the methods API.
var (
	ErrSetupRequired = errors.New("set up a sign-in method first")
	ErrNotEnabled    = errors.New("this method is not enabled for your organisation")
	ErrNoEnrolment   = errors.New("no set-up in progress (it expires after 10 minutes): start again")
	ErrBadInput      = errors.New("invalid input")
)

// EnrolmentTTL bounds the time between showing a new app secret and
// confirming it with a first code.
const EnrolmentTTL = 10 * time.Minute

// BackupCodeCount is how many backup codes a set has.
const BackupCodeCount = 10

// MethodStore keeps the organisation policy and the users' own methods.
type MethodStore interface {
	Setting(ctx context.Context, key string) (string, bool, error)
	SetSetting(ctx context.Context, key, value string) error
	StartEnrolment(ctx context.Context, username string, seed device.Seed, ttl time.Duration) error
	Enrolment(ctx context.Context, username string) (device.Seed, error)
	ConfirmApp(ctx context.Context, username string, seed device.Seed) error
	AppSeed(ctx context.Context, username string) (device.Seed, error)
	Methods(ctx context.Context, username string) ([]string, error)
	RemoveMethod(ctx context.Context, username, method string) error
	ResetMFA(ctx context.Context, username string) error
	SetBackupCodes(ctx context.Context, username string, codes []string) error
	UseBackupCode(ctx context.Context, username, code string) (bool, error)
	BackupCodesLeft(ctx context.Context, username string) (int, error)
	SetLastMethod(ctx context.Context, username, method string) error
	PutSentCode(ctx context.Context, username, purpose, code string, ttl time.Duration) error
	UseSentCode(ctx context.Context, username, purpose, code string) (bool, error)
	StartPhoneEnrolment(ctx context.Context, username, phone string, ttl time.Duration) error
	PhoneEnrolment(ctx context.Context, username string) (string, error)
	ConfirmPhone(ctx context.Context, username, phone string) error
	Phone(ctx context.Context, username string) (string, error)
}

// Message is a code to deliver to a person.
type Message struct {
	// Channel is MethodSMS, MethodCall or MethodEmail.
	Channel string
	// To is an email address (email) or an E.164 phone number (sms, call).
	To      string
	Subject string
	// Text is the message (for a call, what the voice says).
	Text string
}

// Sender delivers codes by text, call and email (the server adapts
// internal/notify's senders to it).
type Sender interface {
	Send(ctx context.Context, m Message) error
	// Configured tells whether channel can be sent on.
	Configured(channel string) bool
}

// Policy is the organisation's MFA policy.
type Policy struct {
	// RequireMFA makes every sign-in pass MFA (a user with no method must
	// set one up first). Off, users without a method sign in with the
	// password alone.
	RequireMFA bool `json:"requireMfa"`
	// Methods are the enabled methods, a subset of OrgMethods.
	Methods []string `json:"methods"`
}

// DefaultPolicy: MFA required, body camera and authenticator app enabled.
func DefaultPolicy() Policy {
	return Policy{RequireMFA: true, Methods: []string{MethodBodycam, MethodApp}}
}

// Enabled tells whether the organisation enabled method.
func (p Policy) Enabled(method string) bool { return slices.Contains(p.Methods, method) }

// Validate checks that the policy names known, implemented methods.
func (p Policy) Validate() error {
	if len(p.Methods) == 0 || len(p.Methods) > 5 {
		return fmt.Errorf("enable from one to five methods of %s", strings.Join(OrgMethods, ", "))
	}
	seen := map[string]bool{}
	for _, m := range p.Methods {
		switch {
		case !slices.Contains(OrgMethods, m):
			return fmt.Errorf("unknown method %q (want %s)", m, strings.Join(OrgMethods, ", "))
		case !implemented[m]:
			return fmt.Errorf("method %q is not available in this camotp build", m)
		case seen[m]:
			return fmt.Errorf("method %q given twice", m)
		}
		seen[m] = true
	}
	return nil
}

// Policy returns the organisation policy (defaults where never set). It is
// read from the database once and kept until a change is announced: by
// SetPolicy on any node sharing the database (storage.TopicPolicy).
func (s *Service) Policy(ctx context.Context) (Policy, error) {
	if p := s.policy.Load(); p != nil {
		return *p, nil
	}
	s.policyMu.Lock() // one loader; SetPolicy waits, so no stale value is kept
	defer s.policyMu.Unlock()
	if p := s.policy.Load(); p != nil {
		return *p, nil
	}
	p := DefaultPolicy()
	if v, ok, err := s.st.Setting(ctx, settingRequireMFA); err != nil {
		return Policy{}, err
	} else if ok {
		p.RequireMFA = v == "on"
	}
	if v, ok, err := s.st.Setting(ctx, settingMethods); err != nil {
		return Policy{}, err
	} else if ok {
		p.Methods = strings.Split(v, ",")
	}
	s.policy.Store(&p)
	return p, nil
}

// forgetPolicy drops the cached policy: the next Policy reads it again.
func (s *Service) forgetPolicy() {
	s.policyMu.Lock()
	s.policy.Store(nil)
	s.policyMu.Unlock()
}

// PolicyChosen tells whether an administrator ever set the policy (false:
// the defaults apply).
func (s *Service) PolicyChosen(ctx context.Context) (bool, error) {
	_, ok, err := s.st.Setting(ctx, settingMethods)
	return ok, err
}

// SetPolicy stores a validated policy; actor and ip go to the audit log.
// A method that sends codes needs its sender configured on this server.
func (s *Service) SetPolicy(ctx context.Context, p Policy, actor, ip string) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	for _, m := range p.Methods {
		if sends[m] && (s.sender == nil || !s.sender.Configured(m)) {
			return fmt.Errorf("%w: method %q needs a sender configured on the server (serve --smtp-host for email, --sms-webhook, --call-webhook, or --dev-outbox)", ErrBadInput, m)
		}
	}
	ordered := slices.DeleteFunc(slices.Clone(OrgMethods), func(m string) bool { return !p.Enabled(m) })
	req := "off"
	if p.RequireMFA {
		req = "on"
	}
	s.policyMu.Lock()
	err := errors.Join(s.st.SetSetting(ctx, settingMethods, strings.Join(ordered, ",")), s.st.SetSetting(ctx, settingRequireMFA, req))
	s.policy.Store(nil) // read back from the database next time
	s.policyMu.Unlock()
	if aerr := s.st.Announce(ctx, storage.TopicPolicy); aerr != nil {
		// The other nodes keep the old policy until they reconnect to the
		// database or restart: say so loudly.
		s.log.Error("tell the other nodes of the policy change", "err", aerr)
		err = errors.Join(err, fmt.Errorf("policy saved, but other nodes were not told: %w", aerr))
	}
	s.st.Audit(ctx, model.AuditEntry{Actor: actor, Action: "org.policy", Subject: "org", Result: model.Result(err), SourceIP: ip,
		Detail: fmt.Sprintf("methods=%s require_mfa=%s", strings.Join(ordered, ","), req)})
	return err
}

// UserMethods is what a user can do at the MFA step.
type UserMethods struct {
	// Available are the methods the user can pass MFA with now, in
	// challenge order (backup codes last).
	Available []string `json:"available"`
	// Default is the method the challenge opens with: the last one used
	// when still available, else the first.
	Default string `json:"default"`
	// CanSetUp are enabled methods the user may set up themselves.
	CanSetUp []string `json:"canSetUp"`
	// Registered are the methods the user set up (not the camera).
	Registered []string `json:"registered"`
	// BackupCodes is the number of unused backup codes.
	BackupCodes int `json:"backupCodes"`
	// Camera is the assigned camera's model when the camera is available.
	Camera device.Model `json:"camera,omitempty"`
	// Email is the profile address codes go to when email is available.
	Email string `json:"email,omitempty"`
}

// Methods returns what user can do at the MFA step under the policy: each
// method says whether it is available to the user, in challenge order.
func (s *Service) Methods(ctx context.Context, user string) (UserMethods, error) {
	pol, err := s.Policy(ctx)
	if err != nil {
		return UserMethods{}, err
	}
	var um UserMethods
	if um.Registered, err = s.st.Methods(ctx, user); err != nil {
		return UserMethods{}, err
	}
	u, _, err := s.st.User(ctx, user) // profile email and last method
	if err != nil {
		return UserMethods{}, err
	}
	acct := Account{Username: user, Profile: u, Policy: pol, Registered: um.Registered}
	for _, m := range s.order {
		ok, err := m.Available(ctx, acct, &um)
		if err != nil {
			return UserMethods{}, err
		}
		if ok {
			um.Available = append(um.Available, m.Name())
		}
		if e, isE := m.(Enrollable); isE {
			if what, can := e.SetUp(acct); can && !slices.Contains(um.CanSetUp, what) {
				um.CanSetUp = append(um.CanSetUp, what)
			}
		}
	}
	if slices.Contains(um.Available, u.LastMethod) {
		um.Default = u.LastMethod
	} else if len(um.Available) > 0 {
		um.Default = um.Available[0]
	}
	return um, nil
}

// AppEnrolment is a new authenticator-app secret to show the user.
type AppEnrolment struct {
	// Secret is the base32 key, for typing into the app.
	Secret string `json:"secret"`
	// URI is the otpauth:// key URI the QR code holds.
	URI string `json:"uri"`
	// QRPNG is the QR code of URI, a PNG image.
	QRPNG []byte `json:"qrPng"`
}

// StartApp makes a new app secret for user, kept as an enrolment in
// progress until ConfirmApp sees a first valid code from the app.
func (s *Service) StartApp(ctx context.Context, user string) (AppEnrolment, error) {
	pol, err := s.Policy(ctx)
	if err != nil {
		return AppEnrolment{}, err
	}
	if !pol.Enabled(MethodApp) {
		return AppEnrolment{}, ErrNotEnabled
	}
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return AppEnrolment{}, fmt.Errorf("app secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: user, Secret: secret,
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return AppEnrolment{}, fmt.Errorf("app key: %w", err)
	}
	seed := device.DefaultSeed(secret)
	seed.Version = uint64(s.now().UnixNano()) // a new enrolment starts a new replay record
	if err := s.st.StartEnrolment(ctx, user, seed, EnrolmentTTL); err != nil {
		return AppEnrolment{}, err
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, 256)
	if err != nil {
		return AppEnrolment{}, fmt.Errorf("QR code: %w", err)
	}
	return AppEnrolment{Secret: key.Secret(), URI: key.URL(), QRPNG: png}, nil
}

// ConfirmApp checks a first code from the app being set up and, when it
// is valid, makes the app one of user's methods (replacing an earlier app).
func (s *Service) ConfirmApp(ctx context.Context, user, code, ip string) error {
	var seed device.Seed
	return s.confirm(ctx, user, ip, MethodApp, func(now time.Time) (CheckResult, error) {
		var err error
		if seed, err = s.st.Enrolment(ctx, user); err != nil {
			return CheckResult{}, err
		}
		return s.checker.Check(ctx, "app:"+user, seed, code, now)
	}, func() (string, error) {
		return "", s.st.ConfirmApp(ctx, user, seed)
	})
}

// confirm runs the throttled confirmation of a method being set up: check
// looks the set-up up and checks the code; save, when the code is good,
// makes the method the user's and returns a detail for the audit log.
func (s *Service) confirm(ctx context.Context, user, ip, method string, check func(now time.Time) (CheckResult, error), save func() (string, error)) error {
	a, err := s.reserve(ctx, "otp", user, ip)
	if err != nil {
		return err
	}
	defer a.release(ctx)
	res, err := check(a.now)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNoEnrolment
	}
	if err != nil {
		return err
	}
	action := "mfa." + method + ".add"
	if res.Outcome != Accepted {
		d, err := a.fail(ctx)
		if err != nil {
			return err
		}
		s.audit(ctx, user, action, method, res.Outcome.String(), ip, "")
		if d.Blocked {
			return &BlockedError{RetryAfter: d.RetryAfter}
		}
		return &CodeError{AttemptsLeft: d.AttemptsLeft}
	}
	if err := a.succeed(ctx); err != nil {
		return err
	}
	detail, err := save()
	s.audit(ctx, user, action, method, model.Result(err), ip, detail)
	return err
}

// RemoveMethod removes one of user's registered methods.
func (s *Service) RemoveMethod(ctx context.Context, user, method, ip string) error {
	err := s.st.RemoveMethod(ctx, user, method)
	s.audit(ctx, user, "mfa."+method+".remove", method, model.Result(err), ip, "")
	return err
}

// NewBackupCodes makes a fresh set of single-use backup codes for user,
// replacing every earlier one, and returns them: they are shown once.
func (s *Service) NewBackupCodes(ctx context.Context, user, ip string) ([]string, error) {
	codes := make([]string, BackupCodeCount)
	for i := range codes {
		codes[i] = rand.Text()[:10] // 50 bits of base32
	}
	err := s.st.SetBackupCodes(ctx, user, codes)
	s.audit(ctx, user, "mfa.backup.regenerate", MethodBackup, model.Result(err), ip, "")
	if err != nil {
		return nil, err
	}
	for i, c := range codes {
		codes[i] = strings.ToLower(c[:5] + "-" + c[5:])
	}
	return codes, nil
}

// normalizeBackup turns a typed backup code into its stored form.
func normalizeBackup(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
}

// ForgetDevices ends every session and trusted browser of user and drops
// the methods they registered (an admin action).
func (s *Service) ForgetDevices(ctx context.Context, user, actor, ip string) error {
	err := errors.Join(s.st.DeleteTokens(ctx, user, ""), s.st.ResetMFA(ctx, user))
	s.st.Audit(ctx, model.AuditEntry{Actor: actor, Action: "user.forget-devices", Subject: user, Result: model.Result(err), SourceIP: ip})
	return err
}

// ResetMFA drops user's registered methods, backup codes and trusted
// browsers (an admin action).
func (s *Service) ResetMFA(ctx context.Context, user, actor, ip string) error {
	err := s.st.ResetMFA(ctx, user)
	s.st.Audit(ctx, model.AuditEntry{Actor: actor, Action: "user.reset-mfa", Subject: user, Result: model.Result(err), SourceIP: ip})
	return err
}

// PasswordStore changes passwords.
type PasswordStore interface {
	SetPassword(ctx context.Context, username, hash string) error
	DeleteTokens(ctx context.Context, username, kind string) error
}

// ChangePassword replaces user's password after checking the current one.
// Every session and trusted browser of the user ends; the returned session
// token replaces the caller's.
func (s *Service) ChangePassword(ctx context.Context, user, current, next, ip string) (string, error) {
	a, err := s.reserve(ctx, "password", user, ip)
	if err != nil {
		return "", err
	}
	defer a.release(ctx)
	_, hash, err := s.st.User(ctx, user)
	if err != nil {
		return "", err
	}
	ok, _, err := s.hasher.Check(ctx, hash, current)
	if err != nil {
		return "", err
	}
	if !ok {
		d, err := a.fail(ctx)
		if err != nil {
			return "", err
		}
		s.audit(ctx, user, "user.password", MethodPassword, "failed", ip, "wrong current password")
		if d.Blocked {
			return "", &BlockedError{RetryAfter: d.RetryAfter}
		}
		return "", ErrBadCredentials
	}
	if err := a.succeed(ctx); err != nil {
		return "", err
	}
	newHash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return "", err // says what a password needs
	}
	if err := s.st.SetPassword(ctx, user, newHash); err != nil {
		return "", err
	}
	if err := s.st.DeleteTokens(ctx, user, ""); err != nil {
		return "", err
	}
	s.audit(ctx, user, "user.password", MethodPassword, "ok", ip, "changed by the user; sessions and trusted browsers ended")
	return s.st.CreateToken(ctx, model.TokenSession, user, MethodPassword, ip, s.cfg.SessionTTL)
}

// SetSender sets how codes are sent by text, call and email; call it
// before serving.
func (s *Service) SetSender(snd Sender) { s.sender = snd }

// newCode is a random 6-digit code.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Mask hides most of an address for showing ("a•••@pd.example", "•••4567").
func Mask(addr string) string {
	if at := strings.IndexByte(addr, '@'); at > 0 {
		return addr[:1] + "•••" + addr[at:]
	}
	if len(addr) > 4 {
		return "•••" + addr[len(addr)-4:]
	}
	return "•••"
}

// send makes a code for (user, purpose), records it (the previous one
// dies) and sends it on channel to addr. Sends count against the "send"
// throttle, so nobody can flood a phone or mailbox.
func (s *Service) send(ctx context.Context, user, purpose, channel, addr, ip string) error {
	if s.sender == nil {
		return fmt.Errorf("%s: %w", channel, ErrNotEnabled)
	}
	a, err := s.reserve(ctx, "send", user, ip)
	if err != nil {
		return err
	}
	// Counted like a failure until a code is used (which clears it).
	if _, err := a.fail(ctx); err != nil {
		return err
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	ttl := s.SentCodeTTL(channel)
	if err := s.st.PutSentCode(ctx, user, purpose, code, ttl); err != nil {
		return err
	}
	m := Message{Channel: channel, To: addr, Subject: "Your sign-in code",
		Text: fmt.Sprintf("Your %s sign-in code is %s. It expires in %s. If you did not try to sign in, tell your administrator.", s.cfg.Issuer, code, Lifetime(ttl))}
	if channel == MethodCall {
		m.Text = fmt.Sprintf("Your %s sign-in code is: %s. Again: %s.", s.cfg.Issuer, spaced(code), spaced(code))
	}
	err = s.sender.Send(ctx, m)
	s.audit(ctx, user, "mfa.code.send", channel, model.Result(err), ip, purpose+" to "+Mask(addr))
	if err != nil {
		return fmt.Errorf("send the code: %w", err)
	}
	return nil
}

func spaced(code string) string { return strings.Join(strings.Split(code, ""), " ") }

// SendCode sends a code for a pending sign-in by method (sms, call or
// email) and returns where it went, masked. Resending kills the earlier code.
func (s *Service) SendCode(ctx context.Context, pending, method, ip string) (string, error) {
	t, err := s.st.LookupToken(ctx, model.TokenPending, pending)
	if err != nil {
		return "", ErrBadToken
	}
	um, err := s.Methods(ctx, t.Username)
	if err != nil {
		return "", err
	}
	if !sends[method] || !slices.Contains(um.Available, method) {
		return "", ErrNoMethod
	}
	addr := um.Email
	if method != MethodEmail {
		if addr, err = s.st.Phone(ctx, t.Username); err != nil {
			return "", err
		}
	}
	if err := s.send(ctx, t.Username, method, method, addr, ip); err != nil {
		return "", err
	}
	return Mask(addr), nil
}

// checkSent consumes the code sent to user by method, when it matches.
func (s *Service) checkSent(ctx context.Context, user, method, code, ip string) (CheckResult, error) {
	if len(code) != 6 || !allDigits(code) {
		return CheckResult{Outcome: Invalid}, nil
	}
	ok, err := s.st.UseSentCode(ctx, user, method, code)
	if err != nil || !ok {
		return CheckResult{Outcome: Invalid}, err
	}
	if err := s.reg.Succeed(ctx, "send", user, ip); err != nil { // sending is allowed again
		return CheckResult{}, err
	}
	return CheckResult{Outcome: Accepted}, nil
}

// StartPhone sends a code to phone (E.164, e.g. +15551234567) by text, or
// by call when only calls are enabled, to confirm it for user.
func (s *Service) StartPhone(ctx context.Context, user, phone, ip string) error {
	pol, err := s.Policy(ctx)
	if err != nil {
		return err
	}
	channel := MethodSMS
	switch {
	case pol.Enabled(MethodSMS):
	case pol.Enabled(MethodCall):
		channel = MethodCall
	default:
		return ErrNotEnabled
	}
	phone = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(phone)
	if !e164.MatchString(phone) {
		return fmt.Errorf("%w: phone number %q: want international format, e.g. +15551234567", ErrBadInput, phone)
	}
	if err := s.st.StartPhoneEnrolment(ctx, user, phone, EnrolmentTTL); err != nil {
		return err
	}
	return s.send(ctx, user, "phone-setup", channel, phone, ip)
}

// ConfirmPhone checks the code sent to the phone being set up; valid, the
// phone becomes user's text and call method.
func (s *Service) ConfirmPhone(ctx context.Context, user, code, ip string) error {
	var phone string
	return s.confirm(ctx, user, ip, SetupPhone, func(time.Time) (CheckResult, error) {
		var err error
		if phone, err = s.st.PhoneEnrolment(ctx, user); err != nil {
			return CheckResult{}, err
		}
		return s.checkSent(ctx, user, "phone-setup", code, ip)
	}, func() (string, error) {
		return Mask(phone), s.st.ConfirmPhone(ctx, user, phone)
	})
}
