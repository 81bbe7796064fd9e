package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

const cameraCols = `serial, model, public_key, state, version, COALESCE(pending_op, ''), COALESCE(pending_version, 0),
	COALESCE(assigned_user, ''), last_seen, created_at, online, ` + lostCols

func scanCamera(row pgx.Row) (model.Camera, error) {
	var c model.Camera
	var lastSeen *int64
	var created int64
	var op, state, camModel string
	var lost lostScan
	if err := row.Scan(append([]any{&c.Serial, &camModel, &c.PublicKey, &state, &c.Version, &op, &c.PendingVersion,
		&c.AssignedUser, &lastSeen, &created, &c.Online}, lost.dest()...)...); err != nil {
		return model.Camera{}, err
	}
	c.Lost = lost.lost()
	c.Model, c.State, c.PendingOp = device.Model(camModel), model.CameraState(state), model.Op(op)
	c.CreatedAt = utc(created)
	if lastSeen != nil {
		t := utc(*lastSeen)
		c.LastSeen = &t
	}
	return c, nil
}

// AddCamera registers a camera in state registered. ErrExists for a
// duplicate serial.
func (s *Store) AddCamera(ctx context.Context, serial string, camModel device.Model, publicKey string) error {
	now := s.now().UnixMilli()
	_, err := s.exec(ctx, `INSERT INTO cameras (serial, model, public_key, state, created_at, updated_at)
		VALUES ($1,$2,$3,$4,$5,$5)`, serial, string(camModel), publicKey, string(model.StateRegistered), now)
	if isUnique(err) {
		return fmt.Errorf("camera %s: %w", serial, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add camera %s: %w", serial, err)
	}
	return nil
}

// camera reads one camera matching where (with arg).
func (s *Store) camera(ctx context.Context, where string, arg any) (model.Camera, error) {
	var c model.Camera
	err := s.row(ctx, `SELECT `+cameraCols+` FROM cameras WHERE `+where, args(arg), func(r pgx.Row) error {
		var err error
		c, err = scanCamera(r)
		return err
	})
	return c, err
}

// Camera returns one camera, ErrNotFound when unknown.
func (s *Store) Camera(ctx context.Context, serial string) (model.Camera, error) {
	c, err := s.camera(ctx, `serial = $1`, serial)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Camera{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.Camera{}, fmt.Errorf("read camera %s: %w", serial, err)
	}
	return c, nil
}

// Cameras lists every camera by serial.
func (s *Store) Cameras(ctx context.Context) ([]model.Camera, error) {
	var out []model.Camera
	err := s.query(ctx, `SELECT `+cameraCols+` FROM cameras ORDER BY serial`, nil, func(r pgx.Rows) error {
		c, err := scanCamera(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	return out, nil
}

// StartOp records a new operation on a camera under the next provisioning
// version and returns that version. seed is the seed to deliver (nil for a
// wipe); build makes the payload that is stored for resending. The states
// it is allowed from are model.NextState's; ErrConflict otherwise. A wipe
// drops the active seed at once, so the camera stops verifying codes
// before it acknowledges. The camera's row is locked for the transaction,
// so concurrent operations on one camera take versions one after another.
func (s *Store) StartOp(ctx context.Context, serial string, op model.Op, seed *device.Seed, challenge []byte, build storage.BuildCommand) (uint64, error) {
	var version uint64
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		c, err := scanCamera(tx.QueryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = $1 FOR UPDATE`, serial))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		next, err := model.NextState(c.State, op)
		var te *model.TransitionError
		if errors.As(err, &te) {
			return fmt.Errorf("camera %s %w: %w", serial, err, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		version = max(c.Version, c.PendingVersion) + 1
		var sealedSeed []byte
		if seed != nil {
			seed.Version = version
			if sealedSeed, err = s.seal.SealCameraSeed(serial, *seed); err != nil {
				return err
			}
		}
		payload, err := build(version)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE cameras SET state = $1, pending_op = $2, pending_version = $3, pending_seed = $4,
			pending_challenge = $5, pending_payload = $6, updated_at = $7,
			seed = CASE WHEN $8 THEN NULL ELSE seed END, seed_at = CASE WHEN $8 THEN NULL ELSE seed_at END
			WHERE serial = $9`,
			string(next), string(op), version, sealedSeed, challenge, payload, s.now().UnixMilli(), model.DropsSeed(op), serial)
		return err
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// Pending returns the camera's unproven operation, ErrNotFound when none.
func (s *Store) Pending(ctx context.Context, serial string) (model.Pending, error) {
	var p model.Pending
	var op *string
	var sealed []byte
	err := s.queryRow(ctx, `SELECT pending_op, COALESCE(pending_version, 0), pending_seed, pending_challenge, pending_payload
		FROM cameras WHERE serial = $1`, args(serial), &op, &p.Version, &sealed, &p.Challenge, &p.Payload)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && op == nil) {
		return model.Pending{}, fmt.Errorf("pending operation for %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.Pending{}, fmt.Errorf("read pending operation for %s: %w", serial, err)
	}
	p.Op = model.Op(*op)
	if sealed != nil {
		seed, err := s.seal.OpenCameraSeed(serial, sealed)
		if err != nil {
			return model.Pending{}, err
		}
		p.Seed = &seed
	}
	return p, nil
}

// PendingSerials lists the cameras with an unproven operation.
func (s *Store) PendingSerials(ctx context.Context) ([]string, error) {
	var out []string
	err := s.query(ctx, `SELECT serial FROM cameras WHERE pending_op IS NOT NULL ORDER BY serial`, nil, func(r pgx.Rows) error {
		var sn string
		err := r.Scan(&sn)
		out = append(out, sn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list pending: %w", err)
	}
	return out, nil
}

// CompleteOp marks the pending operation at version as proven: the camera
// enters model.CompletedState (a provision or rotate makes its seed the
// active one, and the old seed dies here; a wipe leaves none).
// ErrConflict when version is not the pending one.
func (s *Store) CompleteOp(ctx context.Context, serial string, version uint64) (model.Op, error) {
	var op model.Op
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var pop *string
		var pver uint64
		err := tx.QueryRow(ctx, `SELECT pending_op, COALESCE(pending_version, 0) FROM cameras WHERE serial = $1 FOR UPDATE`, serial).Scan(&pop, &pver)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if pop == nil || pver != version {
			return fmt.Errorf("camera %s has no pending operation at version %d: %w", serial, version, storage.ErrConflict)
		}
		op = model.Op(*pop)
		_, err = tx.Exec(ctx, `UPDATE cameras SET state = $1, version = $2, seed = CASE WHEN $3 THEN NULL ELSE pending_seed END,
			seed_at = CASE WHEN $3 THEN NULL ELSE $4::bigint END, pending_op = NULL, pending_version = NULL, pending_seed = NULL, pending_challenge = NULL, pending_payload = NULL,
			updated_at = $4 WHERE serial = $5`,
			string(model.CompletedState(op)), version, model.DropsSeed(op), s.now().UnixMilli(), serial)
		return err
	})
	return op, err
}

// ActiveSeed returns the seed a provisioned camera proved it holds.
// ErrNotFound for an unknown camera or one that is not provisioned.
func (s *Store) ActiveSeed(ctx context.Context, serial string) (device.Seed, error) {
	var sealed []byte
	var state string
	err := s.queryRow(ctx, `SELECT state, seed FROM cameras WHERE serial = $1`, args(serial), &state, &sealed)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (model.CameraState(state) != model.StateProvisioned || sealed == nil)) {
		return device.Seed{}, fmt.Errorf("active seed of %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return device.Seed{}, fmt.Errorf("read seed of %s: %w", serial, err)
	}
	return s.seal.OpenCameraSeed(serial, sealed)
}

// Touch records that the camera was seen at t.
func (s *Store) Touch(ctx context.Context, serial string, t time.Time) error {
	if _, err := s.exec(ctx, `UPDATE cameras SET last_seen = $1 WHERE serial = $2`, t.UnixMilli(), serial); err != nil {
		return fmt.Errorf("touch %s: %w", serial, err)
	}
	return nil
}

// Assign gives the camera to user. A user has at most one camera, and a
// camera at most one user: both are refused with ErrConflict (the unique
// assigned_user decides between two concurrent assignments to one user).
func (s *Store) Assign(ctx context.Context, serial, username string) error {
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return s.assign(ctx, tx, serial, username) })
}

// assign is Assign in tx.
func (s *Store) assign(ctx context.Context, tx pgx.Tx, serial, username string) error {
	var current string
	var lost bool
	err := tx.QueryRow(ctx, `SELECT COALESCE(assigned_user, ''), lost_at IS NOT NULL FROM cameras WHERE serial = $1 FOR UPDATE`, serial).Scan(&current, &lost)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if lost {
		return fmt.Errorf("%w: %w", model.LostAssignError(serial), storage.ErrConflict)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)`, username).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	if current == username {
		return nil
	}
	if current != "" {
		return fmt.Errorf("camera %s is assigned to %s: unassign it first: %w", serial, current, storage.ErrConflict)
	}
	var other string
	err = tx.QueryRow(ctx, `SELECT serial FROM cameras WHERE assigned_user = $1`, username).Scan(&other)
	if err == nil {
		return fmt.Errorf("user %s already has camera %s: unassign it first: %w", username, other, storage.ErrConflict)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE cameras SET assigned_user = $1, updated_at = $2 WHERE serial = $3`, username, s.now().UnixMilli(), serial)
	if isUnique(err) {
		return fmt.Errorf("user %s already has a camera: unassign it first: %w", username, storage.ErrConflict)
	}
	return err
}

// Unassign takes the camera from its user (no error when it had none).
func (s *Store) Unassign(ctx context.Context, serial string) error {
	tag, err := s.exec(ctx, `UPDATE cameras SET assigned_user = NULL, updated_at = $1 WHERE serial = $2`, s.now().UnixMilli(), serial)
	if err != nil {
		return fmt.Errorf("unassign %s: %w", serial, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	return nil
}

// CameraOf returns the camera assigned to user, ErrNotFound when none.
func (s *Store) CameraOf(ctx context.Context, username string) (model.Camera, error) {
	c, err := s.camera(ctx, `assigned_user = $1`, username)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.Camera{}, fmt.Errorf("camera of %s: %w", username, storage.ErrNotFound)
	}
	if err != nil {
		return model.Camera{}, fmt.Errorf("camera of %s: %w", username, err)
	}
	return c, nil
}

// cameraCheckCols are what a CameraCheck holds: the columns of a camera c
// (cameraCols), its sealed seed and the replay record o of its codes, each
// NULL when there is none (LEFT JOIN).
const cameraCheckCols = `c.serial, c.model, c.public_key, c.state, c.version, c.pending_op, c.pending_version,
	c.assigned_user, c.last_seen, c.created_at, c.online, c.seed,
	o.seed_version, o.last_step, o.drift, o.resync_offset, o.resync_step`

// cameraCheckScan receives cameraCheckCols.
type cameraCheckScan struct {
	serial, camModel, publicKey, state, op, user *string
	version, pendingVersion, lastSeen, created   *int64
	online                                       *bool
	sealed                                       []byte
	seedVersion, last, drift, off, rstep         *int64
}

func (cs *cameraCheckScan) dest() []any {
	return []any{&cs.serial, &cs.camModel, &cs.publicKey, &cs.state, &cs.version, &cs.op, &cs.pendingVersion,
		&cs.user, &cs.lastSeen, &cs.created, &cs.online, &cs.sealed,
		&cs.seedVersion, &cs.last, &cs.drift, &cs.off, &cs.rstep}
}

// check is the CameraCheck scanned, its seed opened; nil when no camera
// was found.
func (cs *cameraCheckScan) check(seal storage.Sealer) (*model.CameraCheck, error) {
	if cs.serial == nil {
		return nil, nil
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	num := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	cc := &model.CameraCheck{Camera: model.Camera{Serial: *cs.serial, Model: device.Model(str(cs.camModel)),
		PublicKey: str(cs.publicKey), State: model.CameraState(str(cs.state)), Version: uint64(num(cs.version)),
		PendingOp: model.Op(str(cs.op)), PendingVersion: uint64(num(cs.pendingVersion)), AssignedUser: str(cs.user),
		Online: cs.online != nil && *cs.online, CreatedAt: utc(num(cs.created))}}
	if cs.lastSeen != nil {
		t := utc(*cs.lastSeen)
		cc.Camera.LastSeen = &t
	}
	if cc.Camera.State == model.StateProvisioned && cs.sealed != nil {
		seed, err := seal.OpenCameraSeed(cc.Camera.Serial, cs.sealed)
		if err != nil {
			return nil, err
		}
		cc.Seed = &seed
	}
	if cs.seedVersion != nil {
		cc.OTPFound = true
		cc.OTP = model.OTPState{SeedVersion: uint64(*cs.seedVersion), LastStep: num(cs.last), Drift: num(cs.drift), ResyncOffset: cs.off}
		if cs.off != nil {
			cc.OTP.ResyncStep = num(cs.rstep)
		}
	}
	return cc, nil
}

// CameraStates counts cameras by state; a camera with an operation in
// flight counts under "pending:<op>" instead of its state.
func (s *Store) CameraStates(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := s.query(ctx, `SELECT CASE WHEN pending_op IS NULL THEN state ELSE 'pending:' || pending_op END, COUNT(*)
		FROM cameras GROUP BY 1`, nil, func(r pgx.Rows) error {
		var k string
		var n int
		err := r.Scan(&k, &n)
		out[k] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count camera states: %w", err)
	}
	return out, nil
}
