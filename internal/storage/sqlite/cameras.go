package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

const cameraCols = `serial, model, public_key, state, version, COALESCE(pending_op, ''), COALESCE(pending_version, 0),
	COALESCE(assigned_user, ''), last_seen, created_at, online, ` + lostCols

func scanCamera(row interface{ Scan(...any) error }) (model.Camera, error) {
	var c model.Camera
	var lastSeen sql.NullInt64
	var created int64
	var op string
	var lost lostScan
	if err := row.Scan(append([]any{&c.Serial, &c.Model, &c.PublicKey, &c.State, &c.Version, &op, &c.PendingVersion,
		&c.AssignedUser, &lastSeen, &created, &c.Online}, lost.dest()...)...); err != nil {
		return model.Camera{}, err
	}
	c.PendingOp = model.Op(op)
	c.Lost = lost.lost()
	c.CreatedAt = time.UnixMilli(created).UTC()
	if lastSeen.Valid {
		t := time.UnixMilli(lastSeen.Int64).UTC()
		c.LastSeen = &t
	}
	return c, nil
}

// AddCamera registers a camera in state registered. ErrExists for a
// duplicate serial.
func (s *Store) AddCamera(ctx context.Context, serial string, camModel device.Model, publicKey string) error {
	now := s.now().UnixMilli()
	_, err := s.exec(ctx, `INSERT INTO cameras (serial, model, public_key, state, created_at, updated_at)
		VALUES (?,?,?,?,?,?)`, serial, camModel, publicKey, model.StateRegistered, now, now)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrExists)
		}
		return fmt.Errorf("add camera %s: %w", serial, err)
	}
	return nil
}

// Camera returns one camera, ErrNotFound when unknown.
func (s *Store) Camera(ctx context.Context, serial string) (model.Camera, error) {
	c, err := scanCamera(s.queryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return model.Camera{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.Camera{}, fmt.Errorf("read camera %s: %w", serial, err)
	}
	return c, nil
}

// Cameras lists every camera by serial.
func (s *Store) Cameras(ctx context.Context) ([]model.Camera, error) {
	rows, err := s.query(ctx, `SELECT `+cameraCols+` FROM cameras ORDER BY serial`)
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	defer rows.Close()
	var out []model.Camera
	for rows.Next() {
		c, err := scanCamera(rows)
		if err != nil {
			return nil, fmt.Errorf("list cameras: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// StartOp records a new operation on a camera under the next provisioning
// version and returns that version. seed is the seed to deliver (nil for a
// wipe); build makes the payload that is stored for resending. Allowed:
// provision from registered, pending or wiped; rotate from provisioned;
// wipe from any state but wiped. A wipe drops the active seed at once, so the
// camera stops verifying codes before it acknowledges. ErrConflict otherwise.
func (s *Store) StartOp(ctx context.Context, serial string, op model.Op, seed *device.Seed, challenge []byte, build storage.BuildCommand) (uint64, error) {
	var version uint64
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		c, err := scanCamera(tx.QueryRowContext(ctx, `SELECT `+cameraCols+` FROM cameras WHERE serial = ?`, serial))
		if errors.Is(err, sql.ErrNoRows) {
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
		q := `UPDATE cameras SET state = ?, pending_op = ?, pending_version = ?, pending_seed = ?, pending_challenge = ?,
			pending_payload = ?, updated_at = ? WHERE serial = ?`
		if model.DropsSeed(op) {
			q = strings.Replace(q, "state = ?,", "state = ?, seed = NULL, seed_at = NULL,", 1)
		}
		_, err = tx.ExecContext(ctx, q, next, op, version, sealedSeed, challenge, payload, s.now().UnixMilli(), serial)
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
	var op sql.NullString
	var sealed []byte
	err := s.queryRow(ctx, `SELECT pending_op, COALESCE(pending_version, 0), pending_seed, pending_challenge, pending_payload
		FROM cameras WHERE serial = ?`, serial).Scan(&op, &p.Version, &sealed, &p.Challenge, &p.Payload)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !op.Valid) {
		return model.Pending{}, fmt.Errorf("pending operation for %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.Pending{}, fmt.Errorf("read pending operation for %s: %w", serial, err)
	}
	p.Op = model.Op(op.String)
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
	rows, err := s.query(ctx, `SELECT serial FROM cameras WHERE pending_op IS NOT NULL ORDER BY serial`)
	if err != nil {
		return nil, fmt.Errorf("list pending: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sn string
		if err := rows.Scan(&sn); err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// CompleteOp marks the pending operation at version as proven: a provision or
// rotate makes its seed the active one (the old seed dies here) and the
// camera provisioned; a wipe makes it wiped. ErrConflict when version is not
// the pending one.
func (s *Store) CompleteOp(ctx context.Context, serial string, version uint64) (model.Op, error) {
	var op model.Op
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		var pop sql.NullString
		var pver uint64
		err := tx.QueryRowContext(ctx, `SELECT pending_op, COALESCE(pending_version, 0) FROM cameras WHERE serial = ?`, serial).Scan(&pop, &pver)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !pop.Valid || pver != version {
			return fmt.Errorf("camera %s has no pending operation at version %d: %w", serial, version, storage.ErrConflict)
		}
		op = model.Op(pop.String)
		now := s.now().UnixMilli()
		clear := `pending_op = NULL, pending_version = NULL, pending_seed = NULL, pending_challenge = NULL, pending_payload = NULL`
		seed, seedAt := "pending_seed", "?3"
		if model.DropsSeed(op) {
			seed, seedAt = "NULL", "NULL"
		}
		_, err = tx.ExecContext(ctx, `UPDATE cameras SET state = ?1, version = ?2, seed = `+seed+`, seed_at = `+seedAt+`, `+clear+`, updated_at = ?3 WHERE serial = ?4`,
			model.CompletedState(op), version, now, serial)
		return err
	})
	return op, err
}

// ActiveSeed returns the seed a provisioned camera proved it holds.
// ErrNotFound for an unknown camera or one that is not provisioned.
func (s *Store) ActiveSeed(ctx context.Context, serial string) (device.Seed, error) {
	var sealed []byte
	var state model.CameraState
	err := s.queryRow(ctx, `SELECT state, seed FROM cameras WHERE serial = ?`, serial).Scan(&state, &sealed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (state != model.StateProvisioned || sealed == nil)) {
		return device.Seed{}, fmt.Errorf("active seed of %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return device.Seed{}, fmt.Errorf("read seed of %s: %w", serial, err)
	}
	return s.seal.OpenCameraSeed(serial, sealed)
}

// Touch records that the camera was seen at t.
func (s *Store) Touch(ctx context.Context, serial string, t time.Time) error {
	_, err := s.exec(ctx, `UPDATE cameras SET last_seen = ? WHERE serial = ?`, t.UnixMilli(), serial)
	return err
}

// Assign gives the camera to user. A user has at most one camera, and a
// camera at most one user: both are refused with ErrConflict.
func (s *Store) Assign(ctx context.Context, serial, username string) error {
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error { return s.assign(ctx, tx, serial, username) })
}

// assign is Assign in tx.
func (s *Store) assign(ctx context.Context, tx *wtx, serial, username string) error {
	var current string
	var lost bool
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(assigned_user, ''), lost_at IS NOT NULL FROM cameras WHERE serial = ?`, serial).Scan(&current, &lost)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if lost {
		return fmt.Errorf("%w: %w", model.LostAssignError(serial), storage.ErrConflict)
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE username = ?`, username).Scan(&exists); err != nil {
		return err
	}
	if exists == 0 {
		return fmt.Errorf("user %s: %w", username, storage.ErrNotFound)
	}
	if current == username {
		return nil
	}
	if current != "" {
		return fmt.Errorf("camera %s is assigned to %s: unassign it first: %w", serial, current, storage.ErrConflict)
	}
	var other string
	err = tx.QueryRowContext(ctx, `SELECT serial FROM cameras WHERE assigned_user = ?`, username).Scan(&other)
	if err == nil {
		return fmt.Errorf("user %s already has camera %s: unassign it first: %w", username, other, storage.ErrConflict)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE cameras SET assigned_user = ?, updated_at = ? WHERE serial = ?`, username, s.now().UnixMilli(), serial)
	return err
}

// Unassign takes the camera from its user (no error when it had none).
func (s *Store) Unassign(ctx context.Context, serial string) error {
	res, err := s.exec(ctx, `UPDATE cameras SET assigned_user = NULL, updated_at = ? WHERE serial = ?`, s.now().UnixMilli(), serial)
	if err != nil {
		return fmt.Errorf("unassign %s: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	return nil
}

// CameraOf returns the camera assigned to user, ErrNotFound when none.
func (s *Store) CameraOf(ctx context.Context, username string) (model.Camera, error) {
	c, err := scanCamera(s.queryRow(ctx, `SELECT `+cameraCols+` FROM cameras WHERE assigned_user = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
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
	serial, camModel, publicKey, state, op, user sql.NullString
	version, pendingVersion, lastSeen, created   sql.NullInt64
	online                                       sql.NullBool
	sealed                                       []byte
	seedVersion, last, drift, off, rstep         sql.NullInt64
}

func (cs *cameraCheckScan) dest() []any {
	return []any{&cs.serial, &cs.camModel, &cs.publicKey, &cs.state, &cs.version, &cs.op, &cs.pendingVersion,
		&cs.user, &cs.lastSeen, &cs.created, &cs.online, &cs.sealed,
		&cs.seedVersion, &cs.last, &cs.drift, &cs.off, &cs.rstep}
}

// check is the CameraCheck scanned, its seed opened; nil when no camera
// was found.
func (cs *cameraCheckScan) check(seal storage.Sealer) (*model.CameraCheck, error) {
	if !cs.serial.Valid {
		return nil, nil
	}
	cc := &model.CameraCheck{Camera: model.Camera{Serial: cs.serial.String, Model: device.Model(cs.camModel.String),
		PublicKey: cs.publicKey.String, State: model.CameraState(cs.state.String), Version: uint64(cs.version.Int64),
		PendingOp: model.Op(cs.op.String), PendingVersion: uint64(cs.pendingVersion.Int64), AssignedUser: cs.user.String,
		Online: cs.online.Bool, CreatedAt: time.UnixMilli(cs.created.Int64).UTC()}}
	if cs.lastSeen.Valid {
		t := time.UnixMilli(cs.lastSeen.Int64).UTC()
		cc.Camera.LastSeen = &t
	}
	if cc.Camera.State == model.StateProvisioned && cs.sealed != nil {
		seed, err := seal.OpenCameraSeed(cc.Camera.Serial, cs.sealed)
		if err != nil {
			return nil, err
		}
		cc.Seed = &seed
	}
	if cs.seedVersion.Valid {
		cc.OTPFound = true
		cc.OTP = model.OTPState{SeedVersion: uint64(cs.seedVersion.Int64), LastStep: cs.last.Int64, Drift: cs.drift.Int64}
		if cs.off.Valid {
			o := cs.off.Int64
			cc.OTP.ResyncOffset, cc.OTP.ResyncStep = &o, cs.rstep.Int64
		}
	}
	return cc, nil
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// CameraStates counts cameras by state; a camera with an operation in
// flight counts under "pending:<op>" instead of its state.
func (s *Store) CameraStates(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT CASE WHEN pending_op IS NULL THEN state ELSE 'pending:' || pending_op END, COUNT(*)
		FROM cameras GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("count camera states: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count camera states: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Ping checks that the database answers, on the read pool (the write
// connection is the writer's for the store's life; ProbeWrite proves
// writes).
func (s *Store) Ping(ctx context.Context) error { return s.rdb.PingContext(ctx) }
