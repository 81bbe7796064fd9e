package provisioning

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Registry is the part of the fleet registry the provisioning service uses.
type Registry interface {
	Camera(ctx context.Context, serial string) (model.Camera, error)
	StartOp(ctx context.Context, serial string, op model.Op, seed *device.Seed, challenge []byte, build storage.BuildCommand) (uint64, error)
	Pending(ctx context.Context, serial string) (model.Pending, error)
	PendingSerials(ctx context.Context) ([]string, error)
	CompleteOp(ctx context.Context, serial string, version uint64) (model.Op, error)
	Touch(ctx context.Context, serial string, t time.Time) error
	SetPresence(ctx context.Context, serial string, online bool, at time.Time) error
	ClaimResends(ctx context.Context, now time.Time, every time.Duration, limit int) ([]string, error)
	OnlineCount(ctx context.Context) (int, error)
	Audit(ctx context.Context, e model.AuditEntry) error
	LostRegistry
	ChallengeClock(ctx context.Context, c model.ClockChallenge) error
	AnswerClock(ctx context.Context, serial string, nonce []byte) (time.Time, time.Duration, bool, error)
	RecordClock(ctx context.Context, r model.ClockReport, alert time.Duration) (model.CameraClock, bool, error)
}

// Publisher sends a QoS 1 message to the broker.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// BrokerAccounts keeps a camera's login on an external broker that has no
// hook into camotp (mosquitto's dynamic security plugin): EnsureCamera
// creates it, or brings its password up to date, and is idempotent.
type BrokerAccounts interface {
	EnsureCamera(ctx context.Context, serial string, key camkey.PublicKey) error
}

// Service is the server side of provisioning.
type Service struct {
	reg      Registry
	pub      atomic.Pointer[Publisher]
	accounts BrokerAccounts
	boxPub   [32]byte
	boxPriv  [32]byte
	now      func() time.Time
	log      *slog.Logger
	lostObs  LostObserver // told of each camera reported lost

	byBroker atomic.Bool // presence comes from SetPresence only

	clocks clockTelemetry // the cameras' clock reports (clock.go)

	// SetPresence queues here (the latest event of each camera) and one
	// goroutine writes: the broker's hook never waits for the database.
	presenceMu   sync.Mutex
	presence     map[string]presenceEvent
	presenceWake chan struct{}
	presenceStop chan struct{}
	presenceDone chan struct{}
	closeOnce    sync.Once
}

// NewService returns a provisioning service. boxKey is the server's X25519
// private key that commands are sealed from (cameras pin its public half).
func NewService(reg Registry, boxKey [32]byte, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{reg: reg, boxPriv: boxKey, now: now, log: log,
		presence: map[string]presenceEvent{}, presenceWake: make(chan struct{}, 1),
		presenceStop: make(chan struct{}), presenceDone: make(chan struct{})}
	s.boxPub = camkey.BoxPublic(boxKey)
	go s.writePresence()
	return s
}

// presenceEvent is the latest word on one camera not yet written.
type presenceEvent struct {
	online bool
	at     time.Time
}

// writePresence writes the presence events SetPresence queued, the latest
// of each camera, until Close; then what is left, bounded.
func (s *Service) writePresence() {
	defer close(s.presenceDone)
	for {
		select {
		case <-s.presenceWake:
		case <-s.presenceStop:
			s.flushPresence()
			return
		}
		s.flushPresence()
	}
}

func (s *Service) flushPresence() {
	s.presenceMu.Lock()
	batch := s.presence
	s.presence = map[string]presenceEvent{}
	s.presenceMu.Unlock()
	for serial, e := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
		if err := s.reg.SetPresence(ctx, serial, e.online, e.at); err != nil {
			s.log.Warn("record presence", "serial", serial, "online", e.online, "err", err)
		}
		cancel()
	}
}

// Close stops the presence writer once it has written what is queued.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		close(s.presenceStop)
		<-s.presenceDone
	})
}

// Online is the number of cameras connected to the broker now, as the
// latest presence event or status message of each camera said — kept in
// the store, so every node gives the same answer.
func (s *Service) Online(ctx context.Context) (int, error) {
	return s.reg.OnlineCount(ctx)
}

// presenceTimeout bounds one presence write: the broker's hook waits for it.
const presenceTimeout = 5 * time.Second

func (s *Service) setOnline(ctx context.Context, serial string, on bool) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	if err := s.reg.SetPresence(ctx, serial, on, s.now()); err != nil {
		s.log.Warn("record presence", "serial", serial, "online", on, "err", err)
	}
}

// SetPresence records that the camera serial connected to the broker
// (online) or left it (offline), cleanly or not. The embedded broker calls
// it from its session events; with an external broker the cameras' status
// messages (an explicit "offline" before a clean disconnect, the will
// otherwise) carry the same news. It is safe to call from any goroutine
// and never waits for the store: the event, timed now, is written in the
// background (a slow database must not hold up the broker's hook, which
// every camera's connection waits for); the store keeps the newest.
//
// Once it has been called, it is the only source of presence: status
// messages reach the server through the broker in no fixed order, and a
// late "online" must not undo the broker's own word that a camera left.
func (s *Service) SetPresence(serial string, online bool) {
	s.byBroker.Store(true)
	s.presenceMu.Lock()
	s.presence[serial] = presenceEvent{online: online, at: s.now()}
	s.presenceMu.Unlock()
	select {
	case s.presenceWake <- struct{}{}:
	default: // the writer is awake already and will see it
	}
}

// SetPublisher attaches the MQTT link; until then commands stay pending
// (ResendAll publishes them).
func (s *Service) SetPublisher(p Publisher) { s.pub.Store(&p) }

// SetBrokerAccounts makes Start ensure the camera's broker login before it
// sends a command (call it before serving). Without it, the broker is
// trusted to know the camera (the embedded broker reads the registry).
func (s *Service) SetBrokerAccounts(a BrokerAccounts) { s.accounts = a }

// EnsureAccount gives the camera its login on the external broker, when
// broker accounts are set; a failure is logged and audited (actor and ip
// are the requester's), not returned: the next operation or the next sync
// tries again.
func (s *Service) EnsureAccount(ctx context.Context, serial string, key camkey.PublicKey, actor, ip string) {
	if s.accounts == nil {
		return
	}
	if err := s.accounts.EnsureCamera(ctx, serial, key); err != nil {
		s.log.Warn("camera broker login not ensured; retried on the next operation or broker reconnect", "serial", serial, "err", err)
		s.audit(ctx, actor, "camera.broker-login", serial, model.Result(err), ip, "")
	}
}

// ServerKey is the server's X25519 public key, as cameras pin it.
func (s *Service) ServerKey() [32]byte { return s.boxPub }

// NewSeed returns a fresh random seed: 160 bits from crypto/rand (RFC 4226
// §4), SHA1, 6 digits, 30 s.
func NewSeed() (device.Seed, error) {
	secret := make([]byte, SeedBytes)
	if _, err := rand.Read(secret); err != nil {
		return device.Seed{}, fmt.Errorf("generate seed: %w", err)
	}
	return device.DefaultSeed(secret), nil
}

// ErrNoIdentity refuses an operation over MQTT on a camera whose identity
// key is not registered (one imported from a PSKC file without it): the
// command could not be sealed to it, nor its proof checked. It is a
// storage.ErrConflict (the admin API answers 409).
var ErrNoIdentity = fmt.Errorf("no identity key registered: %w", storage.ErrConflict)

// Start begins op on the camera: it generates the seed (provision, rotate)
// and challenge, records them under the next version, seals the command to
// the camera and publishes it. actor and ip go to the audit log.
func (s *Service) Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error) {
	cam, err := s.reg.Camera(ctx, serial)
	if err != nil {
		return 0, err
	}
	if cam.PublicKey == "" {
		err := fmt.Errorf("camera %s has no MQTT identity key (imported with its seed): register it with 'camotp admin camera set-key %s --public-key K' before a %s: %w",
			serial, serial, op, ErrNoIdentity)
		s.audit(ctx, actor, string(op)+".start", serial, model.Result(err), ip, "")
		return 0, err
	}
	pub, err := camkey.ParsePublicKey(cam.PublicKey)
	if err != nil {
		return 0, fmt.Errorf("camera %s public key: %w", serial, err)
	}
	var seed *device.Seed
	if op != model.OpWipe {
		sd, err := NewSeed()
		if err != nil {
			return 0, err
		}
		seed = &sd
	}
	challenge := make([]byte, ChallengeBytes)
	if _, err := rand.Read(challenge); err != nil {
		return 0, fmt.Errorf("challenge: %w", err)
	}
	version, err := s.reg.StartOp(ctx, serial, op, seed, challenge, func(v uint64) ([]byte, error) {
		in := Instruction{Op: op, Serial: serial, Version: v, Challenge: challenge}
		if seed != nil {
			sd := *seed
			sd.Version = v
			in.Seed = &sd
		}
		return SealCommand(in, pub, &s.boxPub, &s.boxPriv)
	})
	s.audit(ctx, actor, string(op)+".start", serial, model.Result(err), ip, fmt.Sprintf("version %d", version))
	if err != nil {
		return 0, err
	}
	s.log.Info("provisioning started", "serial", serial, "op", op, "version", version)
	// The camera must be able to log in to hear the command.
	s.EnsureAccount(ctx, serial, pub, actor, ip)
	if err := s.resend(ctx, serial); err != nil {
		// The operation is recorded; it is resent when the camera reports online.
		s.log.Warn("publish provisioning command", "serial", serial, "err", err)
	}
	return version, nil
}

func (s *Service) audit(ctx context.Context, actor, action, subject, result, ip, detail string) {
	if err := s.reg.Audit(ctx, model.AuditEntry{Actor: actor, Action: action, Subject: subject, Result: result, SourceIP: ip, Detail: detail}); err != nil {
		s.log.Error("audit write failed", "action", action, "subject", subject, "err", err)
	}
}

// resend publishes the camera's pending command again, if it has one.
func (s *Service) resend(ctx context.Context, serial string) error {
	p, err := s.reg.Pending(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	pub := s.pub.Load()
	if pub == nil {
		return errors.New("no MQTT link yet")
	}
	return (*pub).Publish(ctx, provTopic(serial), p.Payload)
}

// ResendAll publishes every pending command again: after a server or broker
// restart nothing that was in flight is lost (the camera answers a repeat of
// what it already applied with the same proof).
func (s *Service) ResendAll(ctx context.Context) error {
	serials, err := s.reg.PendingSerials(ctx)
	if err != nil {
		return err
	}
	for _, sn := range serials {
		if err := s.resend(ctx, sn); err != nil {
			return fmt.Errorf("resend to %s: %w", sn, err)
		}
	}
	return nil
}

// ResendDue publishes again the pending commands that no node resent in
// the last every, up to limit of them, and returns how many it sent. Every
// node calls it periodically: a command whose node died between recording
// and publishing it, or whose publish or ack was lost, still reaches the
// camera, and only one node resends each.
func (s *Service) ResendDue(ctx context.Context, every time.Duration, limit int) (int, error) {
	// A node that cannot publish claims nothing: what it claimed would
	// wait a whole period more while another node could send it.
	p := s.pub.Load()
	if p == nil {
		return 0, nil
	}
	if c, ok := (*p).(interface{ Connected() bool }); ok && !c.Connected() {
		return 0, nil
	}
	serials, err := s.reg.ClaimResends(ctx, s.now(), every, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sn := range serials {
		if err := s.resend(ctx, sn); err != nil {
			return n, fmt.Errorf("resend to %s: %w", sn, err)
		}
		n++
	}
	return n, nil
}

// HandleMessage processes one message from a camera topic (acks and status).
// Bad messages are logged and dropped; they never change state.
func (s *Service) HandleMessage(ctx context.Context, topic string, payload []byte) {
	if sn := serialFromTopic(topic, "ack"); sn != "" {
		switch err := s.handleAck(ctx, sn, payload); {
		case errors.Is(err, errDuplicateAck):
			// A command can reach a camera twice (published when started
			// and again when the camera comes online), each copy is
			// acknowledged, and an ack may be delivered twice: nothing to
			// do, nothing wrong.
			s.log.Debug("provisioning ack dropped", "serial", sn, "err", err)
		case err != nil:
			s.log.Warn("provisioning ack dropped", "serial", sn, "err", err)
		}
		return
	}
	if sn := serialFromTopic(topic, "status"); sn != "" {
		cam, err := s.reg.Camera(ctx, sn)
		if err != nil {
			s.log.Warn("status from unknown camera dropped", "serial", sn)
			return
		}
		if isClockReport(payload) {
			s.handleClock(ctx, cam, payload)
			return
		}
		if err := s.reg.Touch(ctx, sn, s.now()); err != nil {
			s.log.Warn("record last seen", "serial", sn, "err", err)
		}
		if !s.byBroker.Load() {
			s.setOnline(ctx, sn, string(payload) == StatusOnline)
		}
		if string(payload) == StatusOnline {
			if err := s.resend(ctx, sn); err != nil {
				s.log.Warn("resend on reconnect", "serial", sn, "err", err)
			}
			s.challengeClock(ctx, cam)
		}
		return
	}
	s.log.Warn("message on unexpected topic dropped", "topic", topic, "bytes", len(payload))
}

// errDuplicateAck is an ack of an operation the camera proved already.
var errDuplicateAck = errors.New("duplicate ack")

// proven reports whether the camera has proven version already. It reads
// the camera afresh: the same ack delivered twice at once is checked by
// two handlers, and the second may have read the camera before the first
// completed the operation.
func (s *Service) proven(ctx context.Context, serial string, version uint64) bool {
	cam, err := s.reg.Camera(ctx, serial)
	return err == nil && version <= cam.Version
}

func (s *Service) handleAck(ctx context.Context, serial string, payload []byte) error {
	ack, err := ParseAck(payload, serial)
	if err != nil {
		return err
	}
	cam, err := s.reg.Camera(ctx, serial)
	if err != nil {
		return err
	}
	_ = s.reg.Touch(ctx, serial, s.now())
	p, err := s.reg.Pending(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		if s.proven(ctx, serial, ack.Version) {
			return fmt.Errorf("%w: %s v%d, proven already", errDuplicateAck, ack.Op, ack.Version)
		}
		return fmt.Errorf("ack for version %d but nothing is pending", ack.Version)
	}
	if err != nil {
		return err
	}
	if ack.Version != p.Version || ack.Op != p.Op {
		if s.proven(ctx, serial, ack.Version) {
			return fmt.Errorf("%w: %s v%d, proven already (%s v%d pending)", errDuplicateAck, ack.Op, ack.Version, p.Op, p.Version)
		}
		return fmt.Errorf("ack for %s v%d does not match pending %s v%d", ack.Op, ack.Version, p.Op, p.Version)
	}
	if ack.Result != ResultOK {
		s.audit(ctx, "camera:"+serial, string(p.Op)+".ack", serial, ack.Result+": "+ack.Error, "", fmt.Sprintf("version %d", ack.Version))
		return fmt.Errorf("camera refused %s v%d: %s %s", p.Op, p.Version, ack.Result, ack.Error)
	}
	pub, err := camkey.ParsePublicKey(cam.PublicKey)
	if err != nil {
		return err
	}
	if !VerifyProof(p, pub, serial, ack.Proof) {
		s.audit(ctx, "camera:"+serial, string(p.Op)+".proof", serial, "error: proof does not verify", "", fmt.Sprintf("version %d", ack.Version))
		return fmt.Errorf("proof for %s v%d does not verify", p.Op, p.Version)
	}
	op, err := s.reg.CompleteOp(ctx, serial, p.Version)
	s.audit(ctx, "camera:"+serial, string(op)+".proof", serial, model.Result(err), "", fmt.Sprintf("version %d", p.Version))
	if errors.Is(err, storage.ErrConflict) && s.proven(ctx, serial, p.Version) {
		// The same ack, handled at once by another handler, completed it.
		return fmt.Errorf("%w: %s v%d, proven meanwhile", errDuplicateAck, p.Op, p.Version)
	}
	if err != nil {
		return err
	}
	s.log.Info("provisioning proven", "serial", serial, "op", op, "version", p.Version)
	return nil
}
