package model

import "github.com/camotp/camotp/device"

// SeededCamera is a camera registered with a seed it holds already: a
// camera or token seeded at the factory, imported from a PSKC file. It
// starts provisioned, its seed active at version 1.
type SeededCamera struct {
	Serial string
	Model  device.Model
	// PublicKey is the camera's MQTT identity (cam1:…), or "" when it is
	// not known: operations over MQTT (rotate, wipe) are refused until one
	// is registered.
	PublicKey string
	Seed      device.Seed
}

// ImportError is the camera of an all-or-nothing import that could not be
// added (none was).
type ImportError struct {
	// Index is the camera's position in the cameras given.
	Index int
	Err   error
}

// Error is the camera's error.
func (e *ImportError) Error() string { return e.Err.Error() }

// Unwrap returns the camera's error.
func (e *ImportError) Unwrap() error { return e.Err }

// CameraSeed is a camera and the seed it has proven (its active seed),
// as an export reads them.
type CameraSeed struct {
	Camera Camera
	Seed   device.Seed
}
