package signin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/store"
)

// Method checks the codes of one MFA method. Each method is implemented
// once, here; every front door (pages, JSON API, and the identity
// protocols built on them) reaches it through VerifyMethod, which holds
// the rules all methods share: the pending sign-in, the throttle slot,
// the session and the audit row.
type Method interface {
	// Name is the method's name as the API, the audit log and the metrics
	// spell it.
	Name() string
	// Check checks code typed by user at now. detail is what the audit log
	// says of the check (never a secret). An error means the code could
	// not be checked (ErrNoMethod, ErrNotEnabled, a store failure).
	Check(ctx context.Context, user, code, ip string, now time.Time) (res CheckResult, detail string, err error)
}

// newMethods are the service's MFA methods by name.
func (s *Service) newMethods() map[string]Method {
	out := map[string]Method{}
	for _, m := range []Method{bodycamMethod{s}, appMethod{s}, sentMethod{s, MethodSMS}, sentMethod{s, MethodCall},
		sentMethod{s, MethodEmail}, backupMethod{s}} {
		out[m.Name()] = m
	}
	return out
}

// bodycamMethod checks a code against the seed of the camera assigned to
// the user, and no other.
type bodycamMethod struct{ s *Service }

func (bodycamMethod) Name() string { return MethodBodycam }

func (m bodycamMethod) Check(ctx context.Context, user, code, _ string, now time.Time) (CheckResult, string, error) {
	cam, err := m.s.camera(ctx, user)
	if err != nil {
		return CheckResult{}, "", err
	}
	if err := m.s.enabled(ctx, MethodBodycam); err != nil {
		return CheckResult{}, "", err
	}
	seed, err := m.s.st.ActiveSeed(ctx, cam.Serial)
	if errors.Is(err, store.ErrNotFound) {
		return CheckResult{}, "", ErrNoMethod
	}
	if err != nil {
		return CheckResult{}, "", err
	}
	res, err := m.s.checker.Check(ctx, "cam:"+cam.Serial, seed, code, now)
	return res, fmt.Sprintf("bodycam %s offset %d", cam.Serial, res.Offset), err
}

// appMethod checks a code against the user's own authenticator app.
type appMethod struct{ s *Service }

func (appMethod) Name() string { return MethodApp }

func (m appMethod) Check(ctx context.Context, user, code, _ string, now time.Time) (CheckResult, string, error) {
	if err := m.s.enabled(ctx, MethodApp); err != nil {
		return CheckResult{}, "", err
	}
	seed, err := m.s.st.AppSeed(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return CheckResult{}, "", ErrNoMethod
	}
	if err != nil {
		return CheckResult{}, "", err
	}
	res, err := m.s.checker.Check(ctx, "app:"+user, seed, code, now)
	return res, fmt.Sprintf("app offset %d", res.Offset), err
}

// sentMethod checks the code last sent to the user by text, call or email.
type sentMethod struct {
	s       *Service
	channel string
}

func (m sentMethod) Name() string { return m.channel }

func (m sentMethod) Check(ctx context.Context, user, code, ip string, _ time.Time) (CheckResult, string, error) {
	if err := m.s.enabled(ctx, m.channel); err != nil {
		return CheckResult{}, "", err
	}
	res, err := m.s.checkSent(ctx, user, m.channel, code, ip)
	return res, m.channel + " code", err
}

// backupMethod uses up one of the user's single-use backup codes.
type backupMethod struct{ s *Service }

func (backupMethod) Name() string { return MethodBackup }

func (m backupMethod) Check(ctx context.Context, user, code, _ string, _ time.Time) (CheckResult, string, error) {
	ok, err := m.s.st.UseBackupCode(ctx, user, normalizeBackup(code))
	if err != nil || !ok {
		return CheckResult{}, "", err
	}
	left, _ := m.s.st.BackupCodesLeft(ctx, user)
	return CheckResult{Outcome: Accepted}, fmt.Sprintf("backup code used, %d left", left), nil
}
