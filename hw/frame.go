// Package hw drives a real serial-attached board (a display and five
// buttons) as a camera's panel: the framed wire protocol, the host-side
// driver over go.bug.st/serial, and a board simulator for tests and QA.
// docs/serial-protocol.md describes every frame; hw/firmware holds the
// board-side reference firmware speaking the same protocol.
package hw

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sigurn/crc16"
)

// ProtocolVersion is the version byte every frame carries.
const ProtocolVersion = 1

// MaxFrame bounds a decoded frame (version, type, payload, CRC).
const MaxFrame = 250

// Frame types. Board → host types are below 0x80, host → board at or above.
const (
	TypeHello    byte = 0x01 // board → host: protocol, display size, button count, board id
	TypeButton   byte = 0x02 // board → host: button, edge, board milliseconds
	TypePong     byte = 0x03 // board → host: ping nonce, board milliseconds
	TypeHelloReq byte = 0x80 // host → board: please send Hello
	TypeDraw     byte = 0x81 // host → board: the whole screen as text
	TypeLED      byte = 0x82 // host → board: LED state
	TypePing     byte = 0x83 // host → board: heartbeat
)

// crcTable is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
// no final xor), as the firmware computes it.
var crcTable = crc16.MakeTable(crc16.CRC16_CCITT_FALSE)

// Checksum is the frame CRC of b.
func Checksum(b []byte) uint16 { return crc16.Checksum(b, crcTable) }

// Frame is one decoded frame.
type Frame struct {
	Type    byte
	Payload []byte
}

// Decode errors; the Decoder counts frames dropped for each.
var (
	ErrShort    = errors.New("frame too short")
	ErrCRC      = errors.New("bad CRC")
	ErrVersion  = errors.New("unknown protocol version")
	ErrOversize = errors.New("frame too long")
	ErrCOBS     = errors.New("bad COBS encoding")
	ErrPayload  = errors.New("bad payload")
)

// Marshal returns the frame's wire bytes: COBS-encoded version, type,
// payload and CRC, followed by the 0x00 delimiter.
func (f Frame) Marshal() ([]byte, error) {
	if 4+len(f.Payload) > MaxFrame {
		return nil, fmt.Errorf("marshal frame type %#x: %w (%d bytes)", f.Type, ErrOversize, 4+len(f.Payload))
	}
	raw := make([]byte, 0, 4+len(f.Payload))
	raw = append(raw, ProtocolVersion, f.Type)
	raw = append(raw, f.Payload...)
	raw = binary.BigEndian.AppendUint16(raw, Checksum(raw))
	return append(cobsEncode(raw), 0), nil
}

// ParseFrame checks and decodes one COBS block (without its delimiter).
func ParseFrame(block []byte) (Frame, error) {
	raw, err := cobsDecode(block)
	if err != nil {
		return Frame{}, err
	}
	if len(raw) < 4 {
		return Frame{}, ErrShort
	}
	if len(raw) > MaxFrame {
		return Frame{}, ErrOversize
	}
	body, sum := raw[:len(raw)-2], binary.BigEndian.Uint16(raw[len(raw)-2:])
	if Checksum(body) != sum {
		return Frame{}, ErrCRC
	}
	if body[0] != ProtocolVersion {
		return Frame{}, fmt.Errorf("%w %d", ErrVersion, body[0])
	}
	return Frame{Type: body[1], Payload: body[2:]}, nil
}

// cobsEncode is Consistent Overhead Byte Stuffing: the result holds no 0x00.
func cobsEncode(src []byte) []byte {
	out := make([]byte, 1, len(src)+len(src)/254+2)
	code, codeAt := byte(1), 0
	for i, b := range src {
		if b != 0 {
			out = append(out, b)
			code++
		}
		if b == 0 || code == 0xFF {
			out[codeAt] = code
			code, codeAt = 1, len(out)
			// A full block that ends the input opens no empty block.
			if b == 0 || i < len(src)-1 {
				out = append(out, 0)
			} else {
				codeAt = -1
			}
		}
	}
	if codeAt >= 0 {
		out[codeAt] = code
	}
	return out
}

func cobsDecode(src []byte) ([]byte, error) {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); {
		code := int(src[i])
		if code == 0 || i+code > len(src) {
			return nil, ErrCOBS
		}
		for _, b := range src[i+1 : i+code] {
			if b == 0 {
				return nil, ErrCOBS
			}
		}
		out = append(out, src[i+1:i+code]...)
		i += code
		if code < 0xFF && i < len(src) {
			out = append(out, 0)
		}
	}
	return out, nil
}

// Stats counts what a Decoder received.
type Stats struct {
	Frames   uint64 // good frames
	Short    uint64 // dropped: too short (including stray delimiters)
	CRC      uint64 // dropped: checksum mismatch
	Version  uint64 // dropped: unknown protocol version
	Oversize uint64 // dropped: longer than MaxFrame
	COBS     uint64 // dropped: not valid COBS
}

// Dropped is the number of frames dropped for any reason.
func (s Stats) Dropped() uint64 { return s.Short + s.CRC + s.Version + s.Oversize + s.COBS }

// Decoder splits a byte stream into frames. Bad frames are dropped and
// counted; it resynchronises at the next delimiter, so garbage never
// wedges the link. Its memory is bounded by MaxFrame.
type Decoder struct {
	buf      []byte
	overflow bool
	stats    Stats
}

// Feed consumes bytes and returns the good frames they complete.
func (d *Decoder) Feed(p []byte) []Frame {
	var out []Frame
	for _, b := range p {
		if b != 0 {
			// COBS adds at most one byte per 254, plus one.
			if len(d.buf) >= MaxFrame+MaxFrame/254+1 {
				d.overflow = true
				continue
			}
			d.buf = append(d.buf, b)
			continue
		}
		switch {
		case d.overflow:
			d.stats.Oversize++
		case len(d.buf) == 0:
			// Back-to-back delimiters: a sender may flush with one; ignore.
		default:
			f, err := ParseFrame(d.buf)
			d.count(err)
			if err == nil {
				f.Payload = append([]byte(nil), f.Payload...)
				out = append(out, f)
			}
		}
		d.buf, d.overflow = d.buf[:0], false
	}
	return out
}

func (d *Decoder) count(err error) {
	switch {
	case err == nil:
		d.stats.Frames++
	case errors.Is(err, ErrShort):
		d.stats.Short++
	case errors.Is(err, ErrCRC):
		d.stats.CRC++
	case errors.Is(err, ErrVersion):
		d.stats.Version++
	case errors.Is(err, ErrOversize):
		d.stats.Oversize++
	default:
		d.stats.COBS++
	}
}

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats { return d.stats }
