package signin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Method is one MFA method: whether a user has it, and checking its
// codes. Each method is implemented once, here; Methods asks each in
// challenge order what the user can do, and every front door (pages, JSON
// API, OpenID Connect, RADIUS) reaches Check through VerifyMethod or
// VerifyOnly, which hold the rules all methods share: the pending
// sign-in, the throttle slot, the session (or none) and the audit row.
type Method interface {
	// Name is the method's name as the API, the audit log and the metrics
	// spell it.
	Name() string
	// Available tells whether the user of acct can pass MFA with the
	// method now. It may note in um what the challenge shows for it (the
	// camera's model, the address codes go to, the backup codes left).
	Available(ctx context.Context, acct Account, um *UserMethods) (bool, error)
	// Check checks the answer a. detail is what the audit log says of the
	// check (never a secret). An error means the code could not be
	// checked (ErrNoMethod, ErrNotEnabled, a store failure). An accepted
	// one-time code may leave its replay record in res.Use for the commit
	// that ends the step (see Checker.Match).
	Check(ctx context.Context, a Answer) (res CheckResult, detail string, err error)
}

// Answer is a code typed at the MFA step of a pending sign-in, with what
// the read of that sign-in found.
type Answer struct {
	User, Code, IP string
	Now            time.Time
	// Camera is what checking a code of the user's camera needs, read
	// with the pending sign-in (nil when no camera is assigned).
	Camera *model.CameraCheck
}

// Enrollable is a Method the user sets up themselves (the body camera is
// assigned by the fleet administrator, backup codes are simply made).
type Enrollable interface {
	// SetUp names what the user of acct would set up to get the method
	// (MethodApp; SetupPhone for text and call) and whether they can now.
	SetUp(acct Account) (string, bool)
}

// Account is what decides which methods a user has, read once per
// Methods call.
type Account struct {
	Username string
	// Profile is the user's record (email, last method used).
	Profile model.User
	Policy  Policy
	// Registered are the methods the user set up (MethodApp, SetupPhone).
	Registered []string
}

// newMethods are the service's MFA methods in challenge order (backup
// codes last).
func (s *Service) newMethods() []Method {
	return []Method{bodycamMethod{s}, appMethod{s}, sentMethod{s, MethodSMS}, sentMethod{s, MethodCall},
		sentMethod{s, MethodEmail}, backupMethod{s}}
}

// bodycamMethod checks a code against the seed of the camera assigned to
// the user, and no other.
type bodycamMethod struct{ s *Service }

func (bodycamMethod) Name() string { return MethodBodycam }

// Available: the organisation uses body cameras and a provisioned camera
// is assigned to the user.
func (m bodycamMethod) Available(ctx context.Context, acct Account, um *UserMethods) (bool, error) {
	if !acct.Policy.Enabled(MethodBodycam) {
		return false, nil
	}
	cam, err := m.s.camera(ctx, acct.Username)
	if errors.Is(err, ErrNoMethod) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	um.Camera = cam.Model
	return true, nil
}

// Check checks against the camera, its seed and the replay record of its
// codes as the read of the pending sign-in found them.
func (m bodycamMethod) Check(ctx context.Context, a Answer) (CheckResult, string, error) {
	return m.check(ctx, a, true)
}

func (m bodycamMethod) checkWindow(ctx context.Context, a Answer) (CheckResult, string, error) {
	return m.check(ctx, a, false)
}

// check is Check, within the window only unless outside.
func (m bodycamMethod) check(ctx context.Context, a Answer, outside bool) (CheckResult, string, error) {
	if a.Camera == nil || a.Camera.Camera.State != model.StateProvisioned {
		return CheckResult{}, "", ErrNoMethod
	}
	if err := m.s.enabled(ctx, MethodBodycam); err != nil {
		return CheckResult{}, "", err
	}
	cc := a.Camera
	if cc.Seed == nil {
		return CheckResult{}, "", ErrNoMethod
	}
	serial := cc.Camera.Serial
	match := m.s.checker.MatchWindowRecordNear
	if outside {
		match = m.s.checker.MatchRecordNear
	}
	near := m.s.clockNear(cc, a.Now)
	res, err := match(model.CameraSubject(serial), *cc.Seed, cc.OTP, cc.OTPFound, near, a.Code, a.Now)
	detail := fmt.Sprintf("bodycam %s offset %d", serial, res.Offset)
	if near != nil {
		detail += fmt.Sprintf(" (clock report %+d)", *near)
	}
	return res, detail, err
}

// pureChecker is a method whose check writes nothing, and which can check
// a code within the window with the same work for every code
// (Checker.MatchWindowRecord): such a code is evaluated before it takes a
// throttle slot, and a right one passes in one commit (Service.verify).
type pureChecker interface {
	checkWindow(ctx context.Context, a Answer) (CheckResult, string, error)
}

// appMethod checks a code against the user's own authenticator app.
type appMethod struct{ s *Service }

func (appMethod) Name() string { return MethodApp }

// Available: enabled, and the user set up an app.
func (appMethod) Available(_ context.Context, acct Account, _ *UserMethods) (bool, error) {
	return acct.Policy.Enabled(MethodApp) && slices.Contains(acct.Registered, MethodApp), nil
}

// SetUp: an app, when enabled and the user has none.
func (appMethod) SetUp(acct Account) (string, bool) {
	return MethodApp, acct.Policy.Enabled(MethodApp) && !slices.Contains(acct.Registered, MethodApp)
}

func (m appMethod) Check(ctx context.Context, a Answer) (CheckResult, string, error) {
	return m.check(ctx, a, m.s.checker.Match)
}

func (m appMethod) checkWindow(ctx context.Context, a Answer) (CheckResult, string, error) {
	return m.check(ctx, a, m.s.checker.MatchWindow)
}

// check checks a code of the user's app with match (Checker.Match or
// MatchWindow).
func (m appMethod) check(ctx context.Context, a Answer, match func(context.Context, string, device.Seed, string, time.Time) (CheckResult, error)) (CheckResult, string, error) {
	if err := m.s.enabled(ctx, MethodApp); err != nil {
		return CheckResult{}, "", err
	}
	seed, err := m.s.st.AppSeed(ctx, a.User)
	if errors.Is(err, storage.ErrNotFound) {
		return CheckResult{}, "", ErrNoMethod
	}
	if err != nil {
		return CheckResult{}, "", err
	}
	res, err := match(ctx, "app:"+a.User, seed, a.Code, a.Now)
	return res, fmt.Sprintf("app offset %d", res.Offset), err
}

// sentMethod checks the code last sent to the user by text, call or email.
type sentMethod struct {
	s       *Service
	channel string
}

func (m sentMethod) Name() string { return m.channel }

// Available: enabled, and for text and call a confirmed phone, for email
// an address in the user's profile.
func (m sentMethod) Available(_ context.Context, acct Account, um *UserMethods) (bool, error) {
	if !acct.Policy.Enabled(m.channel) {
		return false, nil
	}
	if m.channel == MethodEmail {
		if acct.Profile.Email == "" {
			return false, nil
		}
		um.Email = acct.Profile.Email
		return true, nil
	}
	return slices.Contains(acct.Registered, SetupPhone), nil
}

// SetUp: a phone (text and call together), when text or call is enabled
// and the user has none; email is the profile's address, not set up here.
func (m sentMethod) SetUp(acct Account) (string, bool) {
	return SetupPhone, m.channel != MethodEmail && acct.Policy.Enabled(m.channel) && !slices.Contains(acct.Registered, SetupPhone)
}

func (m sentMethod) Check(ctx context.Context, a Answer) (CheckResult, string, error) {
	if err := m.s.enabled(ctx, m.channel); err != nil {
		return CheckResult{}, "", err
	}
	res, err := m.s.checkSent(ctx, a.User, m.channel, a.Code, a.IP)
	return res, m.channel + " code", err
}

// backupMethod uses up one of the user's single-use backup codes.
type backupMethod struct{ s *Service }

func (backupMethod) Name() string { return MethodBackup }

// Available: the user has unused backup codes (whatever the policy).
func (m backupMethod) Available(ctx context.Context, acct Account, um *UserMethods) (bool, error) {
	n, err := m.s.st.BackupCodesLeft(ctx, acct.Username)
	if err != nil {
		return false, err
	}
	um.BackupCodes = n
	return n > 0, nil
}

func (m backupMethod) Check(ctx context.Context, a Answer) (CheckResult, string, error) {
	ok, err := m.s.st.UseBackupCode(ctx, a.User, normalizeBackup(a.Code))
	if err != nil || !ok {
		return CheckResult{}, "", err
	}
	left, _ := m.s.st.BackupCodesLeft(ctx, a.User)
	return CheckResult{Outcome: Accepted}, fmt.Sprintf("backup code used, %d left", left), nil
}
