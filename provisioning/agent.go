package provisioning

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
)

// CameraState is what the agent needs of a camera's state directory.
type CameraState interface {
	Identity() device.Identity
	Seed() (device.Seed, error)
	Version() uint64
	StoreSeed(device.Seed) error
	WipeSeed(version uint64) error
	PinnedServerKey() []byte
	PinServerKey([]byte) error
}

// Apply runs one command payload against the camera state and returns the
// ack to publish, or an error when the payload must be dropped unanswered
// (malformed, not for this camera, not sealed to it, or from a server key
// other than the pinned one).
func Apply(st CameraState, payload []byte) (Ack, error) {
	id := st.Identity()
	cmd, err := ParseCommand(payload, id.Serial)
	if err != nil {
		return Ack{}, err
	}
	pin := st.PinnedServerKey()
	if pin != nil && subtle.ConstantTimeCompare(pin, cmd.ServerKey) != 1 {
		return Ack{}, errors.New("command sealed by a server key this camera does not trust")
	}
	in, err := cmd.Open(id.Key)
	if err != nil {
		return Ack{}, err
	}
	if pin == nil {
		if err := st.PinServerKey(cmd.ServerKey); err != nil {
			return Ack{}, err
		}
	}
	ack := Ack{V: ProtocolVersion, Serial: id.Serial, Op: in.Op, Version: in.Version, Result: ResultOK}
	switch in.Op {
	case model.OpProvision, model.OpRotate:
		err = st.StoreSeed(*in.Seed)
		if errors.Is(err, device.ErrStaleVersion) {
			// A resend of what was applied is answered again; an older one is refused.
			cur, cerr := st.Seed()
			if cerr != nil || cur.Version != in.Version || !bytes.Equal(cur.Secret, in.Seed.Secret) {
				ack.Result, ack.Error = ResultStale, fmt.Sprintf("camera is at version %d", st.Version())
				return ack, nil
			}
			err = nil
		}
		if err != nil {
			ack.Result, ack.Error = ResultError, "could not store the seed"
			return ack, nil
		}
		ack.Proof = SeedProof(*in.Seed, id.Serial, in.Version, in.Challenge)
	case model.OpWipe:
		err = st.WipeSeed(in.Version)
		if errors.Is(err, device.ErrStaleVersion) {
			_, serr := st.Seed()
			if st.Version() != in.Version || !errors.Is(serr, device.ErrNoSeed) {
				ack.Result, ack.Error = ResultStale, fmt.Sprintf("camera is at version %d", st.Version())
				return ack, nil
			}
			err = nil
		}
		if err != nil {
			ack.Result, ack.Error = ResultError, "could not erase the seed"
			return ack, nil
		}
		ack.Proof = WipeProof(id.Key, id.Serial, in.Version, in.Challenge)
	}
	return ack, nil
}
