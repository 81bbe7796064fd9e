package model

import "time"

// RotationClaim asks the store for cameras whose scheduled seed rotation
// may start now (storage.Rotations.ClaimRotations).
type RotationClaim struct {
	// Now is when the claim is made; claimed cameras are stamped with it.
	Now time.Time
	// DueBefore: a camera whose active seed was proven at or before it is
	// due (now minus the policy's period).
	DueBefore time.Time
	// LeaseBefore: a camera claimed after it and not rotating yet is held
	// by the node that claimed it (its start may still be under way).
	LeaseBefore time.Time
	// Hour is the start of the hour the claim counts against.
	Hour time.Time
	// Allowed is how many rotations may have started in Hour, all nodes
	// together, once this claim is made.
	Allowed int
}

// RotationCounts are the fleet's numbers for the seed rollover schedule.
type RotationCounts struct {
	// Fleet is the number of provisioned cameras.
	Fleet int `json:"fleet"`
	// Due are provisioned cameras with no operation in flight whose seed
	// is older than the policy's period.
	Due int `json:"due"`
	// Overdue are due cameras that were due already when the last window
	// closed.
	Overdue int `json:"overdue"`
	// Rotating are cameras with a rotation in flight.
	Rotating int `json:"rotating"`
	// Started is the number of scheduled rotations started in the hour
	// asked about, by every node.
	Started int `json:"started"`
}
