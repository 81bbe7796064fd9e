package model

import (
	"time"

	"github.com/camotp/camotp/device"
)

// CameraState is a camera's provisioning state.
type CameraState string

// Camera states: registered → pending → provisioned; wiping → wiped.
const (
	StateRegistered  CameraState = "registered"
	StatePending     CameraState = "pending"
	StateProvisioned CameraState = "provisioned"
	StateWiping      CameraState = "wiping"
	StateWiped       CameraState = "wiped"
)

// Op is a provisioning operation sent to a camera.
type Op string

// Provisioning operations.
const (
	OpProvision Op = "provision"
	OpRotate    Op = "rotate"
	OpWipe      Op = "wipe"
)

// Camera is a registered camera as the registry holds it (no seed).
type Camera struct {
	Serial         string       `json:"serial"`
	Model          device.Model `json:"model"`
	PublicKey      string       `json:"publicKey"`
	State          CameraState  `json:"state"`
	Version        uint64       `json:"version"`
	PendingOp      Op           `json:"pendingOp,omitempty"`
	PendingVersion uint64       `json:"pendingVersion,omitempty"`
	AssignedUser   string       `json:"assignedUser,omitempty"`
	LastSeen       *time.Time   `json:"lastSeen,omitempty"`
	// Online says the camera is connected to the broker now, as the
	// latest presence event said.
	Online    bool      `json:"online"`
	CreatedAt time.Time `json:"createdAt"`
	// Lost is set while the camera is reported lost or stolen (nil
	// otherwise).
	Lost *Lost `json:"lost,omitempty"`
}

// CameraSubjectPrefix starts the code source of a camera's codes in the
// replay records: the serial follows (CameraSubject).
const CameraSubjectPrefix = "cam:"

// CameraSubject is the code source of the codes of camera serial in the
// replay records.
func CameraSubject(serial string) string { return CameraSubjectPrefix + serial }

// CameraCheck is what checking a code read off a camera needs, read at
// once (one snapshot): the camera, the seed it proved it holds, and the
// replay record of its codes.
type CameraCheck struct {
	Camera Camera
	// Seed is the active seed; nil unless the camera is provisioned.
	Seed *device.Seed
	// OTP is the replay record of CameraSubject(Camera.Serial); OTPFound
	// is false when there is none yet.
	OTP      OTPState
	OTPFound bool
	// Clock is what the camera's signed clock reports said last (nil:
	// none yet), to centre the verification window on.
	Clock *CameraClock
}

// Pending is an operation sent to a camera and not yet proven.
type Pending struct {
	Op        Op
	Version   uint64
	Seed      *device.Seed // nil for a wipe
	Challenge []byte
	Payload   []byte // the sealed MQTT command, resent until acknowledged
}
