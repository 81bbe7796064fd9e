package hw

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
)

// FuzzPayloads feeds any payload to the parser of its frame type (what the
// host parses from a board, and the board simulator from a host): no panic;
// whatever is accepted re-encodes to the same payload (Hello: with its board
// id made printable; LED: with index 0, the only LED), and the length and
// range rules of docs/serial-protocol.md hold for it.
func FuzzPayloads(f *testing.F) {
	for _, fr := range []Frame{
		Hello{Protocol: 1, Cols: 20, Rows: 6, Buttons: 5, BoardID: "pico-e6614103e7"}.Frame(),
		ButtonEvent{Button: device.Power, Down: true, Millis: 0xFFFFFFF0}.Frame(),
		Ping{Nonce: 7}.Frame(), Pong{Nonce: 7, Millis: 12345}.Frame(),
		DrawScreen(device.Screen{Lines: []string{"READY"}}, 6, 20).Frame(),
		LED{State: LEDBlink}.Frame(),
	} {
		f.Add(fr.Type, fr.Payload)
	}
	f.Add(TypeHello, []byte{1, 20, 6, 5, 0xC3, 0xA9, 0x00, 0x7F})
	f.Add(TypeDraw, []byte{0, 0})
	f.Add(TypeDraw, []byte{255, 255})
	f.Add(TypeButton, []byte{6, 1, 0, 0, 0, 0})
	f.Add(TypeLED, []byte{3, 2})
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		var back Frame
		switch typ % 6 {
		case 0:
			h, err := ParseHello(p)
			if err != nil {
				return
			}
			if len(p) < 4 || len(h.BoardID) > 32 || strings.ContainsFunc(h.BoardID, func(r rune) bool { return r < 0x20 || r > 0x7E }) {
				t.Fatalf("accepted hello % x as %+v", p, h)
			}
			back = h.Frame()
			want := append(append([]byte{}, p[:4]...), printable(string(p[4:]))...)
			if !bytes.Equal(back.Payload, want) {
				t.Fatalf("hello % x re-encodes to % x", p, back.Payload)
			}
			return
		case 1:
			e, err := ParseButton(p)
			if err != nil {
				return
			}
			if e.Button < device.Select || e.Button > device.Power {
				t.Fatalf("accepted button %d", e.Button)
			}
			back = e.Frame()
		case 2:
			pg, err := ParsePing(p)
			if err != nil {
				return
			}
			back = pg.Frame()
		case 3:
			pg, err := ParsePong(p)
			if err != nil {
				return
			}
			back = pg.Frame()
		case 4:
			d, err := ParseDraw(p)
			if err != nil {
				return
			}
			if len(d.Text) != int(d.Rows)*int(d.Cols) || len(d.Lines()) != int(d.Rows) {
				t.Fatalf("draw %dx%d with %d bytes", d.Cols, d.Rows, len(d.Text))
			}
			back = d.Frame()
		case 5:
			l, err := ParseLED(p)
			if err != nil {
				return
			}
			if l.State > LEDBlink {
				t.Fatalf("LED state %d", l.State)
			}
			back = l.Frame()
			p = append([]byte{0}, p[1:]...)
		}
		if !bytes.Equal(back.Payload, p) {
			t.Fatalf("type %d: % x re-encodes to % x", typ%6, p, back.Payload)
		}
	})
}

// FuzzParseUI: any --ui serial:VALUE either fails or gives a path and a
// baud in range, and a path without '?' round-trips.
func FuzzParseUI(f *testing.F) {
	for _, s := range []string{"/dev/ttyACM0", "/dev/ttyUSB1?baud=9600", "", "/dev/x?baud=fast", "/dev/x?parity=odd", "/dev/x?baud=1&baud=2", "?baud=300", "/dev/x?%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		path, baud, err := ParseUI(v)
		if err != nil {
			return
		}
		if path == "" || strings.Contains(path, "?") || baud < 300 || baud > 4_000_000 {
			t.Fatalf("ParseUI(%q) = %q %d", v, path, baud)
		}
		if p2, b2, err := ParseUI(path + "?baud=" + strconv.Itoa(baud)); err != nil || p2 != path || b2 != baud {
			t.Fatalf("round trip of %q %d: %q %d %v", path, baud, p2, b2, err)
		}
	})
}
