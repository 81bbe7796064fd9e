package provisioning

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Lost or stolen cameras. A report refuses the camera's codes at once,
// queues a wipe that the camera gets when it next connects (the same
// sealed command, resend and signed proof as any wipe), takes the camera
// from its officer (who falls back to their other methods) and leaves a
// flag that only a found ends — and a found is refused until the camera
// is provisioned again with a new seed, so that the copy a thief may
// hold is dead. Found never starts that provision itself: provisioning a
// camera that may still be in a stranger's hands is a decision of its
// own, and found says the camera is back in the agency's.

// LostRegistry is what reports of lost cameras change in the registry.
type LostRegistry interface {
	ReportLost(ctx context.Context, serial string, r model.LostReport, challenge []byte, build storage.BuildCommand) (model.LostOutcome, error)
	FoundCamera(ctx context.Context, serial string, e model.AuditEntry) (model.Camera, error)
}

// LostObserver is told of every camera newly reported lost (metrics); it
// must not block.
type LostObserver interface {
	CameraReportedLost()
}

// SetLostObserver sets the observer of reports; call it before serving.
func (s *Service) SetLostObserver(o LostObserver) { s.lostObs = o }

// ErrBadReason is a report's reason that is not acceptable text.
var ErrBadReason = errors.New("bad reason")

// ReportLost reports the camera lost or stolen (see LostRegistry and
// storage.LostCameras.ReportLost) and, when a wipe was queued, publishes
// it (a camera offline gets it when it says online). The report is
// logged at WARN (serial, officer, actor, reason) and counted; a repeat
// changes nothing and says so (Already). ErrNotFound for an unknown
// serial; a reason that is not one line of text, or too long, wraps
// ErrBadReason. Refusals are audited here, the report by the store in
// its commit.
func (s *Service) ReportLost(ctx context.Context, serial, reason, actor, ip string) (model.LostOutcome, error) {
	reason, err := model.CleanLostReason(reason)
	if err != nil {
		return model.LostOutcome{}, fmt.Errorf("%w: %w", ErrBadReason, err)
	}
	out, err := s.reportLost(ctx, serial, reason, actor, ip)
	if err != nil {
		s.audit(context.WithoutCancel(ctx), actor, model.AuditReportLost, serial, model.Result(err), ip, "")
		return model.LostOutcome{}, err
	}
	if out.Already {
		s.log.Info("camera reported lost again; nothing changed", "serial", serial, "actor", actor, "first_by", out.Camera.Lost.By)
		return out, nil
	}
	s.log.Warn("camera reported lost: its codes are refused, its officer unassigned, a wipe waits for it",
		"serial", serial, "officer", out.Officer, "actor", actor, "reason", reason, "wipe_version", out.Wipe, "ip", ip)
	if s.lostObs != nil {
		s.lostObs.CameraReportedLost()
	}
	if out.Wipe > 0 {
		if pub, err := camkey.ParsePublicKey(out.Camera.PublicKey); err == nil {
			s.EnsureAccount(ctx, serial, pub, actor, ip)
		}
		if err := s.resend(ctx, serial); err != nil {
			// The wipe is recorded; it is resent when the camera reports online.
			s.log.Warn("publish wipe of a lost camera", "serial", serial, "err", err)
		}
	}
	return out, nil
}

// reportLost seals the wipe and has the registry record the report.
func (s *Service) reportLost(ctx context.Context, serial, reason, actor, ip string) (model.LostOutcome, error) {
	if device.ValidateSerial(serial) != nil {
		return model.LostOutcome{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	cam, err := s.reg.Camera(ctx, serial)
	if err != nil {
		return model.LostOutcome{}, err
	}
	pub, err := camkey.ParsePublicKey(cam.PublicKey)
	if err != nil {
		return model.LostOutcome{}, fmt.Errorf("camera %s public key: %w", serial, err)
	}
	challenge := make([]byte, ChallengeBytes)
	if _, err := rand.Read(challenge); err != nil {
		return model.LostOutcome{}, fmt.Errorf("challenge: %w", err)
	}
	return s.reg.ReportLost(ctx, serial, model.LostReport{Actor: actor, SourceIP: ip, Reason: reason}, challenge, func(v uint64) ([]byte, error) {
		return SealCommand(Instruction{Op: model.OpWipe, Serial: serial, Version: v, Challenge: challenge}, pub, &s.boxPub, &s.boxPriv)
	})
}

// Found ends the camera's report once it was provisioned again with a
// new seed (model.CanBeFound): otherwise an error wrapping
// storage.ErrConflict and a *model.FoundError saying what to do first.
// Audited either way.
func (s *Service) Found(ctx context.Context, serial, actor, ip string) (model.Camera, error) {
	var c model.Camera
	var err error
	if device.ValidateSerial(serial) != nil {
		err = fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	} else {
		c, err = s.reg.FoundCamera(ctx, serial, model.AuditEntry{Actor: actor, Action: model.AuditFound, Subject: serial, Result: "ok", SourceIP: ip,
			Detail: "report ended after a fresh provision"})
	}
	if err != nil {
		s.audit(context.WithoutCancel(ctx), actor, model.AuditFound, serial, model.Result(err), ip, "")
		return model.Camera{}, err
	}
	s.log.Info("lost camera found", "serial", serial, "actor", actor, "version", c.Version)
	return c, nil
}

// ReportLost reports the camera lost (the Service's ReportLost: logged,
// counted and audited there).
func (f *Fleet) ReportLost(ctx context.Context, serial, reason, actor, ip string) (model.LostOutcome, error) {
	return f.ops.ReportLost(ctx, serial, reason, actor, ip)
}

// Found ends the camera's report (the Service's Found).
func (f *Fleet) Found(ctx context.Context, serial, actor, ip string) (model.Camera, error) {
	return f.ops.Found(ctx, serial, actor, ip)
}

// LostRequest reports a camera lost; Reason is optional (one line, at
// most model.MaxLostReason bytes).
type LostRequest struct {
	Reason string `json:"reason,omitempty"`
}

// LostResponse answers a report: the camera after it and what it did.
type LostResponse struct {
	Camera model.Camera `json:"camera"`
	// Already says it was reported lost before: nothing changed.
	Already bool `json:"already"`
	// Officer is the officer it was taken from ("" none).
	Officer string `json:"officer,omitempty"`
	// WipeVersion is the wipe queued now (0: none).
	WipeVersion uint64 `json:"wipeVersion,omitempty"`
	// WipePending says a wipe waits for the camera's proof.
	WipePending bool `json:"wipePending"`
	// Message says it all in a sentence.
	Message string `json:"message"`
}

// LostMessage says in a sentence what a report did.
func LostMessage(o model.LostOutcome) string {
	sn := o.Camera.Serial
	if o.Already {
		return fmt.Sprintf("camera %s was already reported lost (by %s at %s); nothing changed", sn, o.Camera.Lost.By,
			o.Camera.Lost.At.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	msg := fmt.Sprintf("camera %s reported lost: its codes are refused from now on", sn)
	if o.Officer != "" {
		msg += "; " + o.Officer + " is unassigned and signs in with their other methods"
	}
	switch {
	case o.WipePending:
		msg += "; a wipe waits for the camera's next connection"
	default:
		msg += "; the camera is wiped already"
	}
	return msg
}

// maxLostBody bounds a report's body.
const maxLostBody = 4 << 10

func (a *AdminAPI) reportLost(w http.ResponseWriter, r *http.Request) {
	var req LostRequest
	if err := httpx.DecodeLimit(w, r, &req, maxLostBody); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := a.fleet.ReportLost(r.Context(), r.PathValue("serial"), req.Reason, adminActor, httpx.ClientIP(r))
	if errors.Is(err, ErrBadReason) {
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LostResponse{Camera: out.Camera, Already: out.Already, Officer: out.Officer,
		WipeVersion: out.Wipe, WipePending: out.WipePending, Message: LostMessage(out)})
}

func (a *AdminAPI) found(w http.ResponseWriter, r *http.Request) {
	c, err := a.fleet.Found(r.Context(), r.PathValue("serial"), adminActor, httpx.ClientIP(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}
