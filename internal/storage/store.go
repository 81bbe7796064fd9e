// Package storage is the contract between camotp and its databases: the
// Store interface every backend implements (sqlite for one node and small
// sites, postgres for several nodes), the sentinel errors callers branch
// on, and the error that says the database cannot take writes now.
// storagetest holds the conformance suite every backend must pass; no
// behaviour exists in one backend only.
//
// Rules that decide under concurrency — a TOTP step used once, throttle
// counters, a token exchanged once, an authorization code redeemed once —
// are one conditional statement in each backend, never a read followed by
// a write, so they hold across processes sharing one database.
package storage

import (
	"context"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
)

// Store is everything camotp keeps. Consumers declare the narrow
// interfaces they need; a Store satisfies all of them.
type Store interface {
	Users
	Cameras
	LostCameras
	MFA
	Throttles
	Tokens
	OIDC
	RadiusClients
	Audit
	Health
	Changes
	Clocks
	Rotations
	// Close stops the store; writes after it fail with ErrClosed.
	Close() error
}

// Users are the accounts.
type Users interface {
	AddUser(ctx context.Context, u model.User, passwordHash string) error
	Users(ctx context.Context) ([]model.User, error)
	User(ctx context.Context, username string) (model.User, string, error)
	SetPassword(ctx context.Context, username, hash string) error
	UserBySubject(ctx context.Context, sub string) (model.User, error)
	SetLastMethod(ctx context.Context, username, method string) error
	// UserPage is one page of the console's user listing, by username,
	// with each user's camera and last sign-in (the newest
	// model.AuditSignIn row of the user with a model.SignInResults
	// result), and the number of users matching: one query for the page
	// and one count.
	UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error)
}

// Cameras is the fleet registry: cameras, their sealed seeds, the
// operation in flight and the assignments to officers.
type Cameras interface {
	AddCamera(ctx context.Context, serial string, camModel device.Model, publicKey string) error
	Camera(ctx context.Context, serial string) (model.Camera, error)
	Cameras(ctx context.Context) ([]model.Camera, error)
	StartOp(ctx context.Context, serial string, op model.Op, seed *device.Seed, challenge []byte, build BuildCommand) (uint64, error)
	Pending(ctx context.Context, serial string) (model.Pending, error)
	PendingSerials(ctx context.Context) ([]string, error)
	CompleteOp(ctx context.Context, serial string, version uint64) (model.Op, error)
	ActiveSeed(ctx context.Context, serial string) (device.Seed, error)
	Touch(ctx context.Context, serial string, t time.Time) error
	Assign(ctx context.Context, serial, username string) error
	Unassign(ctx context.Context, serial string) error
	CameraOf(ctx context.Context, username string) (model.Camera, error)
	CameraStates(ctx context.Context) (map[string]int, error)
	// CameraPage is one page of the console's camera listing with the
	// number of cameras its filters match: one query for the page (the
	// registry's row, the replay record of the camera's codes) and one
	// count.
	CameraPage(ctx context.Context, q model.CameraQuery) (model.CameraPage, error)
	// CameraRow is one camera as CameraPage lists it; ErrNotFound when
	// unknown.
	CameraRow(ctx context.Context, serial string) (model.CameraRow, error)
	// AssignAll makes every assignment, with Assign's rules, or none: the
	// first that cannot be made is an *model.AssignmentError wrapping
	// Assign's error for it, and nothing changed.
	AssignAll(ctx context.Context, as []model.Assignment) error
	// ImportCameras registers every camera of cams provisioned, its seed
	// active at version 1 (sealed like every seed), and appends audit, in
	// one commit, or does nothing: the first camera that cannot be added
	// is an *model.ImportError wrapping ErrExists (a serial known
	// already, or twice in cams).
	ImportCameras(ctx context.Context, cams []model.SeededCamera, audit []model.AuditEntry) error
	// ExportSeeds reads the cameras serials, in that order, with their
	// active seeds, and appends audit in the same commit, or appends
	// nothing: ErrNotFound for an unknown serial, ErrConflict for a
	// camera with no active seed.
	ExportSeeds(ctx context.Context, serials []string, audit []model.AuditEntry) ([]model.CameraSeed, error)
	// SetCameraKey registers the MQTT identity of a camera that has none
	// (imported without one): ErrConflict when it has one already (an
	// identity is never replaced), ErrNotFound when unknown.
	SetCameraKey(ctx context.Context, serial, publicKey string) error
	// Presence lives here, not in one process, so every node agrees.
	SetPresence(ctx context.Context, serial string, online bool, at time.Time) error
	ClearPresence(ctx context.Context, at time.Time) error
	OnlineCount(ctx context.Context) (int, error)
	// ClaimResends hands each pending command nobody resent within
	// every to exactly one of the nodes asking.
	ClaimResends(ctx context.Context, now time.Time, every time.Duration, limit int) ([]string, error)
}

// LostCameras are the reports of lost or stolen cameras: a flag kept
// apart from the provisioning state (model.Camera.Lost).
type LostCameras interface {
	// ReportLost marks the camera lost, in one commit: its active and
	// pending seeds stop verifying codes (the replay record of its codes
	// moves past every version it had, so a sign-in in flight with one of
	// them fails when it commits: ErrStepUsed), a wipe is queued as
	// StartOp queues one (challenge, build) unless the camera is wiped or
	// being wiped, its officer is unassigned, and the audit row is
	// written (action "camera.report-lost", r's actor and source). A
	// camera reported already changes nothing (Already; the row says so).
	// ErrNotFound for an unknown serial.
	ReportLost(ctx context.Context, serial string, r model.LostReport, challenge []byte, build BuildCommand) (model.LostOutcome, error)
	// FoundCamera ends the camera's report and writes e, in one commit,
	// when model.CanBeFound allows it: otherwise its *model.FoundError
	// wrapped with ErrConflict, and nothing changed. ErrNotFound for an
	// unknown serial.
	FoundCamera(ctx context.Context, serial string, e model.AuditEntry) (model.Camera, error)
	// LostCount is the number of cameras reported lost now.
	LostCount(ctx context.Context) (int, error)
}

// Clocks are what the cameras' signed clock reports said (Clock
// telemetry in docs/fleet.md): one row per camera.
type Clocks interface {
	// ChallengeClock keeps c as the camera's outstanding clock challenge,
	// replacing any older one (one per camera, one statement);
	// ErrNotFound for an unknown camera.
	ChallengeClock(ctx context.Context, c model.ClockChallenge) error
	// AnswerClock consumes the camera's outstanding clock challenge when
	// its nonce is nonce, in one conditional statement, and returns when
	// it was sent (c.Sent) and how long ago by the database's own clock
	// (elapsed: the same clock at both ends whichever nodes sent the
	// challenge and got the answer; with one process, the store's clock):
	// of several calls at once with that nonce, one is answered; the
	// others, and calls with another nonce (an older or another camera's
	// challenge), are not and change nothing.
	AnswerClock(ctx context.Context, serial string, nonce []byte) (sent time.Time, elapsed time.Duration, answered bool, err error)
	// RecordClock keeps r when its Seq is above the camera's last
	// recorded one, in one conditional statement: recorded is false (and
	// nothing changed) for a replayed or older report or an unknown
	// camera. The camera is drifting while |r.Offset| > alert;
	// rec.DriftingSince equal to r.At says this report began the episode.
	RecordClock(ctx context.Context, r model.ClockReport, alert time.Duration) (rec model.CameraClock, recorded bool, err error)
	// SetClockMismatch marks the camera's clock as disagreeing with its
	// codes since at (mismatch), or as agreeing again; changed is true
	// for the one call that changed it (one conditional statement), false
	// when it was so already or the camera has no clock record.
	SetClockMismatch(ctx context.Context, serial string, mismatch bool, at time.Time) (changed bool, err error)
	// CameraClock is the camera's clock record; ErrNotFound when none.
	CameraClock(ctx context.Context, serial string) (model.CameraClock, error)
	// CameraClocks are every camera's clock records, by serial.
	CameraClocks(ctx context.Context) ([]model.CameraClock, error)
	// CameraClocksOf are the clock records of the cameras serials names
	// (at most model.MaxPageSize: a page of the listing), by serial;
	// cameras without one are left out.
	CameraClocksOf(ctx context.Context, serials []string) ([]model.CameraClock, error)
}

// Rotations are the shared schedule of seed rollovers: which cameras a
// node may start rotating now, so that several nodes neither rotate one
// camera twice nor start more than the hourly share together.
type Rotations interface {
	// ClaimRotations stamps and returns the provisioned, online cameras
	// with no operation in flight whose seed was proven at or before
	// c.DueBefore and that no node claimed since c.LeaseBefore, oldest
	// seed first, as many as c.Allowed leaves for c.Hour once the
	// rotations started in it (by every node) are counted; the hour's
	// count grows by the number returned. Nodes claiming at once are
	// serialised, so the hour never exceeds c.Allowed.
	ClaimRotations(ctx context.Context, c model.RotationClaim) ([]string, error)
	// RotationCounts counts the fleet, the cameras due (seed proven at or
	// before dueBefore), overdue (at or before overdueBefore), rotating,
	// and the rotations started in hour.
	RotationCounts(ctx context.Context, dueBefore, overdueBefore, hour time.Time) (model.RotationCounts, error)
}

// MFA holds the second factors other than the camera: authenticator
// apps, backup codes, phone numbers and sent codes, organisation
// settings and the notification outbox.
type MFA interface {
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
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
	PutSentCode(ctx context.Context, username, purpose, code string, ttl time.Duration) error
	UseSentCode(ctx context.Context, username, purpose, code string) (bool, error)
	StartPhoneEnrolment(ctx context.Context, username, phone string, ttl time.Duration) error
	PhoneEnrolment(ctx context.Context, username string) (string, error)
	ConfirmPhone(ctx context.Context, username, phone string) error
	Phone(ctx context.Context, username string) (string, error)
	AddOutbox(ctx context.Context, m model.OutboxMessage) error
	Outbox(ctx context.Context, limit int) ([]model.OutboxMessage, error)
}

// Throttles are the attempt counters (see model.ThrottleRule).
type Throttles interface {
	ReserveAttempt(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.Reservation, error)
	RecordFailure(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.FailureResult, error)
	RecordSuccess(ctx context.Context, rules ...model.ThrottleRule) error
	ReleaseAttempt(ctx context.Context, taken model.Reservation, rules ...model.ThrottleRule) error
	PurgeThrottles(ctx context.Context, now time.Time, maxWindow time.Duration) error
	GetThrottles(ctx context.Context, keys ...string) ([]model.Throttle, error)
	// ThrottlesIn reads the counters whose keys fall in one of ranges,
	// by key.
	ThrottlesIn(ctx context.Context, ranges ...model.KeyRange) ([]model.KeyedThrottle, error)
	// ClearThrottles deletes the counters whose keys fall in one of
	// ranges (an administrator unblocks a user) and returns how many.
	ClearThrottles(ctx context.Context, ranges ...model.KeyRange) (int, error)
}

// Tokens are sign-in state: pending sign-ins, sessions, trusted browsers
// (only hashes are kept), and the TOTP replay records.
type Tokens interface {
	OTPState(ctx context.Context, subject string) (st model.OTPState, found bool, err error)
	AcceptStep(ctx context.Context, subject string, seedVersion uint64, step, drift int64) (bool, error)
	SetResync(ctx context.Context, subject string, seedVersion uint64, offset, step int64) error
	CreateToken(ctx context.Context, kind, username, method, ip string, ttl time.Duration) (string, error)
	// ExchangeToken ends the live token old and creates one of kind for
	// username valid for ttl, appends e to the audit log and settles the
	// attempt's throttle counters as a success (settle), all in one
	// commit, or nothing happens: an unreserved attempt takes a slot first
	// (*ThrottledError when refused); ErrNotFound when old is not
	// live (unknown, expired, or exchanged already). use, when not nil,
	// is the replay record of the code that passed, taken in the same
	// commit (AcceptStep's rule): ErrStepUsed when its step was used
	// already.
	ExchangeToken(ctx context.Context, old, kind, username, method, ip string, ttl time.Duration, use *model.StepUse, e model.AuditEntry, settle model.Settlement) (string, error)
	// ConsumeToken is ExchangeToken creating no token.
	ConsumeToken(ctx context.Context, old string, use *model.StepUse, e model.AuditEntry, settle model.Settlement) error
	LookupToken(ctx context.Context, kind, raw string) (model.Token, error)
	// PendingCheck reads in one snapshot the live pending token raw and
	// what checking a code of its user's camera needs: the camera, its
	// active seed (opened; nil unless provisioned) and the replay record
	// of its codes (model.CameraSubject); no camera when none is
	// assigned. ErrNotFound when raw is not a live pending token.
	PendingCheck(ctx context.Context, raw string) (model.PendingCheck, error)
	UserTokens(ctx context.Context, username string) ([]model.Token, error)
	DeleteToken(ctx context.Context, raw string) error
	DeleteTokens(ctx context.Context, username, kind string) error
	PurgeExpired(ctx context.Context) error
}

// OIDC is the OpenID Connect provider's state: clients, signing keys,
// authorization requests and codes, access tokens.
type OIDC interface {
	AddOIDCClient(ctx context.Context, c model.OIDCClient) error
	OIDCClient(ctx context.Context, id string) (model.OIDCClient, error)
	OIDCClients(ctx context.Context) ([]model.OIDCClient, error)
	RemoveOIDCClient(ctx context.Context, id string) error
	AddOIDCKey(ctx context.Context, k model.OIDCKey) error
	OIDCKeys(ctx context.Context, since time.Time) ([]model.OIDCKey, error)
	CreateOIDCAuthRequest(ctx context.Context, id, clientID string, request []byte, ttl time.Duration) error
	OIDCAuthRequest(ctx context.Context, id string) (model.OIDCAuthRequest, error)
	CompleteOIDCAuthRequest(ctx context.Context, id string, signin []byte) error
	SaveOIDCCode(ctx context.Context, id, code string, ttl time.Duration) error
	ConsumeOIDCCode(ctx context.Context, code string) (model.OIDCAuthRequest, error)
	DeleteOIDCAuthRequest(ctx context.Context, id string) error
	AddOIDCToken(ctx context.Context, t model.OIDCToken) error
	OIDCToken(ctx context.Context, id string) (model.OIDCToken, error)
	RevokeOIDCToken(ctx context.Context, id, clientID string) error
}

// RadiusClients are the NASes allowed to ask, with sealed secrets.
type RadiusClients interface {
	AddRadiusClient(ctx context.Context, c model.RadiusClient) error
	RadiusClients(ctx context.Context) ([]model.RadiusClient, error)
	RemoveRadiusClient(ctx context.Context, name string) error
}

// Audit is the append-only audit log.
type Audit interface {
	Audit(ctx context.Context, e model.AuditEntry) error
	AuditLog(ctx context.Context, subject string, limit int) ([]model.AuditEntry, error)
	// AuditPage is one page of the rows q's filter selects, newest first
	// (by ID), with their IDs: q.Limit of them (at most
	// model.MaxPageSize) older than q.Before, or just newer than q.After.
	AuditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error)
	// AuditEach calls fn for every row f selects, newest first, as it
	// reads them, in batches of short queries: memory stays bounded
	// whatever the number of rows, no read holds a snapshot for long, and
	// rows written meanwhile are not included. It stops at fn's first
	// error and returns it.
	AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error
	// AuditChains is how many hash chains the log has (numbered from 0).
	AuditChains() int
	// AuditAfter is up to limit rows of chain after its row afterSeq, in
	// chain order, which is commit order.
	AuditAfter(ctx context.Context, chain int, afterSeq int64, limit int) ([]model.AuditEntry, error)
	// VerifyAudit checks the hash chains and reports the first broken
	// link (a row edited, deleted, inserted or moved in the database).
	VerifyAudit(ctx context.Context) (model.AuditVerdict, error)
	// SetAuditFailureHook is called for every audit row that could not
	// be written (the action it records has happened).
	SetAuditFailureHook(fn func(e model.AuditEntry, err error))
	AuditFailures() uint64
}

// Health is what readiness checks ask.
type Health interface {
	Ping(ctx context.Context) error
	// ProbeWrite proves the database takes a write now.
	ProbeWrite(ctx context.Context) error
	SchemaVersion(ctx context.Context) (int, error)
}
