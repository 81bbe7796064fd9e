package hw

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/camotp/camotp/device"
)

// Hello is the board's introduction, sent at boot and on TypeHelloReq.
type Hello struct {
	Protocol   byte
	Cols, Rows byte
	Buttons    byte
	BoardID    string // ASCII, at most 32 bytes
}

// Frame encodes h.
func (h Hello) Frame() Frame {
	id := h.BoardID
	if len(id) > 32 {
		id = id[:32]
	}
	return Frame{Type: TypeHello, Payload: append([]byte{h.Protocol, h.Cols, h.Rows, h.Buttons}, id...)}
}

// ParseHello decodes a TypeHello payload.
func ParseHello(p []byte) (Hello, error) {
	if len(p) < 4 || len(p) > 4+32 {
		return Hello{}, fmt.Errorf("hello: %w (%d bytes)", ErrPayload, len(p))
	}
	return Hello{Protocol: p[0], Cols: p[1], Rows: p[2], Buttons: p[3], BoardID: printable(string(p[4:]))}, nil
}

// ButtonEvent is one button edge, stamped with the board's millisecond
// counter (which wraps after 49.7 days).
type ButtonEvent struct {
	Button device.Button
	Down   bool
	Millis uint32
}

// Frame encodes e.
func (e ButtonEvent) Frame() Frame {
	p := []byte{byte(e.Button), 0, 0, 0, 0, 0}
	if e.Down {
		p[1] = 1
	}
	binary.BigEndian.PutUint32(p[2:], e.Millis)
	return Frame{Type: TypeButton, Payload: p}
}

// ParseButton decodes a TypeButton payload.
func ParseButton(p []byte) (ButtonEvent, error) {
	if len(p) != 6 || p[1] > 1 || p[0] < byte(device.Select) || p[0] > byte(device.Power) {
		return ButtonEvent{}, fmt.Errorf("button: %w", ErrPayload)
	}
	return ButtonEvent{Button: device.Button(p[0]), Down: p[1] == 1, Millis: binary.BigEndian.Uint32(p[2:])}, nil
}

// Ping is a heartbeat; the board echoes the nonce in a Pong with its clock.
type Ping struct{ Nonce uint32 }

// Frame encodes p.
func (p Ping) Frame() Frame {
	return Frame{Type: TypePing, Payload: binary.BigEndian.AppendUint32(nil, p.Nonce)}
}

// ParsePing decodes a TypePing payload.
func ParsePing(p []byte) (Ping, error) {
	if len(p) != 4 {
		return Ping{}, fmt.Errorf("ping: %w", ErrPayload)
	}
	return Ping{Nonce: binary.BigEndian.Uint32(p)}, nil
}

// Pong answers a Ping.
type Pong struct {
	Nonce  uint32
	Millis uint32
}

// Frame encodes p.
func (p Pong) Frame() Frame {
	b := binary.BigEndian.AppendUint32(nil, p.Nonce)
	return Frame{Type: TypePong, Payload: binary.BigEndian.AppendUint32(b, p.Millis)}
}

// ParsePong decodes a TypePong payload.
func ParsePong(p []byte) (Pong, error) {
	if len(p) != 8 {
		return Pong{}, fmt.Errorf("pong: %w", ErrPayload)
	}
	return Pong{Nonce: binary.BigEndian.Uint32(p), Millis: binary.BigEndian.Uint32(p[4:])}, nil
}

// Draw is the whole screen as Rows lines of Cols ASCII characters.
type Draw struct {
	Rows, Cols byte
	Text       []byte // Rows*Cols bytes, row after row
}

// DrawScreen renders a camera screen for a board of rows×cols characters:
// lines are cut or padded with spaces; characters outside printable ASCII
// become '?'.
func DrawScreen(s device.Screen, rows, cols int) Draw {
	d := Draw{Rows: byte(rows), Cols: byte(cols), Text: make([]byte, 0, rows*cols)}
	for r := range rows {
		line := ""
		if r < len(s.Lines) {
			line = printable(s.Lines[r])
		}
		if len(line) > cols {
			line = line[:cols]
		}
		d.Text = append(d.Text, line...)
		d.Text = append(d.Text, strings.Repeat(" ", cols-len(line))...)
	}
	return d
}

// Lines returns the drawn rows, trailing spaces trimmed.
func (d Draw) Lines() []string {
	out := make([]string, d.Rows)
	for r := range int(d.Rows) {
		out[r] = strings.TrimRight(string(d.Text[r*int(d.Cols):(r+1)*int(d.Cols)]), " ")
	}
	return out
}

// Frame encodes d.
func (d Draw) Frame() Frame {
	return Frame{Type: TypeDraw, Payload: append([]byte{d.Rows, d.Cols}, d.Text...)}
}

// ParseDraw decodes a TypeDraw payload.
func ParseDraw(p []byte) (Draw, error) {
	if len(p) < 2 || len(p) != 2+int(p[0])*int(p[1]) {
		return Draw{}, fmt.Errorf("draw: %w", ErrPayload)
	}
	return Draw{Rows: p[0], Cols: p[1], Text: append([]byte(nil), p[2:]...)}, nil
}

// LED states.
const (
	LEDOff   byte = 0
	LEDOn    byte = 1
	LEDBlink byte = 2
)

// LED sets the board's status LED.
type LED struct{ State byte }

// Frame encodes l.
func (l LED) Frame() Frame { return Frame{Type: TypeLED, Payload: []byte{0, l.State}} }

// ParseLED decodes a TypeLED payload.
func ParseLED(p []byte) (LED, error) {
	if len(p) != 2 || p[1] > LEDBlink {
		return LED{}, fmt.Errorf("led: %w", ErrPayload)
	}
	return LED{State: p[1]}, nil
}

// printable replaces every character outside printable ASCII with '?'.
func printable(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r > 0x7E {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}
