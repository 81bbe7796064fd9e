package hw

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
)

func TestCOBS(t *testing.T) {
	long := bytes.Repeat([]byte{1}, 300)
	for _, tc := range []struct {
		in, out []byte
	}{
		// Vectors from the COBS paper / Wikipedia.
		{[]byte{0x00}, []byte{0x01, 0x01}},
		{[]byte{0x00, 0x00}, []byte{0x01, 0x01, 0x01}},
		{[]byte{0x00, 0x11, 0x00}, []byte{0x01, 0x02, 0x11, 0x01}},
		{[]byte{0x11, 0x22, 0x00, 0x33}, []byte{0x03, 0x11, 0x22, 0x02, 0x33}},
		{[]byte{0x11, 0x22, 0x33, 0x44}, []byte{0x05, 0x11, 0x22, 0x33, 0x44}},
		{[]byte{0x11, 0x00, 0x00, 0x00}, []byte{0x02, 0x11, 0x01, 0x01, 0x01}},
		{bytes.Repeat([]byte{1}, 254), append([]byte{0xFF}, bytes.Repeat([]byte{1}, 254)...)},
		{long, append(append([]byte{0xFF}, long[:254]...), append([]byte{47}, long[254:]...)...)},
	} {
		got := cobsEncode(tc.in)
		if !bytes.Equal(got, tc.out) {
			t.Errorf("encode % x = % x, want % x", tc.in, got, tc.out)
		}
		back, err := cobsDecode(got)
		if err != nil || !bytes.Equal(back, tc.in) {
			t.Errorf("decode % x = % x %v", got, back, err)
		}
	}
	for _, bad := range [][]byte{{0x05, 0x11}, {0x00}, {0x03, 0x11, 0x00}} {
		if _, err := cobsDecode(bad); !errors.Is(err, ErrCOBS) {
			t.Errorf("decode % x: %v, want ErrCOBS", bad, err)
		}
	}
}

func TestChecksum(t *testing.T) {
	// CRC-16/CCITT-FALSE check value.
	if got := Checksum([]byte("123456789")); got != 0x29B1 {
		t.Fatalf("CRC of 123456789 = %#04x, want 0x29b1", got)
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	screen := device.Screen{Lines: []string{"AUTHENTICATOR", "Verification code", "       005924", "Expires in 20s", "[######............]", "Select: back — ok"}}
	d := DrawScreen(screen, 6, 20)
	if got := d.Lines(); got[2] != "       005924" || got[5] != "Select: back ? ok" {
		t.Errorf("draw lines %q", got)
	}
	for _, f := range []Frame{
		Hello{Protocol: 1, Cols: 20, Rows: 6, Buttons: 5, BoardID: "pico-e6614103e7"}.Frame(),
		ButtonEvent{Button: device.Power, Down: true, Millis: 0xFFFFFFF0}.Frame(),
		Ping{Nonce: 7}.Frame(), Pong{Nonce: 7, Millis: 12345}.Frame(),
		d.Frame(), LED{State: LEDBlink}.Frame(), {Type: TypeHelloReq},
	} {
		wire, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(wire[:len(wire)-1], 0) >= 0 || wire[len(wire)-1] != 0 {
			t.Fatalf("wire % x: zero inside or no delimiter", wire)
		}
		var dec Decoder
		got := dec.Feed(wire)
		if len(got) != 1 || got[0].Type != f.Type || !bytes.Equal(got[0].Payload, f.Payload) {
			t.Fatalf("round trip of %#x: %+v", f.Type, got)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"button", func() error { _, err := ParseButton([]byte{9, 1, 0, 0, 0, 0}); return err }()},
		{"button edge", func() error { _, err := ParseButton([]byte{1, 2, 0, 0, 0, 0}); return err }()},
		{"draw size", func() error { _, err := ParseDraw([]byte{6, 20, 'x'}); return err }()},
		{"hello", func() error { _, err := ParseHello([]byte{1, 2}); return err }()},
		{"led", func() error { _, err := ParseLED([]byte{0, 9}); return err }()},
		{"pong", func() error { _, err := ParsePong([]byte{1}); return err }()},
	} {
		if !errors.Is(tc.err, ErrPayload) {
			t.Errorf("%s: %v, want ErrPayload", tc.name, tc.err)
		}
	}
	if _, err := (Frame{Type: TypeDraw, Payload: make([]byte, MaxFrame)}).Marshal(); !errors.Is(err, ErrOversize) {
		t.Errorf("oversize marshal: %v", err)
	}
}

// TestDecoderSplitsAnywhere: a stream cut at every byte boundary decodes
// to the same frames.
func TestDecoderSplitsAnywhere(t *testing.T) {
	var stream []byte
	for i := range 5 {
		w, _ := ButtonEvent{Button: device.Select, Down: i%2 == 0, Millis: uint32(i * 1000)}.Frame().Marshal()
		stream = append(stream, w...)
	}
	for cut := 0; cut <= len(stream); cut++ {
		var dec Decoder
		n := len(dec.Feed(stream[:cut])) + len(dec.Feed(stream[cut:]))
		if n != 5 || dec.Stats().Dropped() != 0 {
			t.Fatalf("cut %d: %d frames, stats %+v", cut, n, dec.Stats())
		}
	}
}

// vector is one line of testdata/vectors.txt, the file the firmware's C
// codec is checked against too: a frame's decoded bytes and its wire bytes,
// or a wire block that must be rejected with a reason.
type vector struct {
	name          string
	kind          string // "ok" or "bad"
	decoded, wire []byte
	reason        string
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("vector line %q: want NAME ok|bad HEX HEX|REASON", line)
		}
		v := vector{name: fields[0], kind: fields[1]}
		if v.decoded, err = hex.DecodeString(fields[2]); err != nil && fields[2] != "-" {
			t.Fatalf("%s: %v", v.name, err)
		}
		if v.kind == "ok" {
			if v.wire, err = hex.DecodeString(fields[3]); err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
		} else {
			v.wire, v.reason = v.decoded, fields[3]
		}
		out = append(out, v)
	}
	return out
}

// TestSharedVectors checks the Go codec against testdata/vectors.txt (the
// firmware's C codec runs the same file in TestFirmwareCodec).
func TestSharedVectors(t *testing.T) {
	vs := readVectors(t)
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		switch v.kind {
		case "ok":
			f := Frame{Type: v.decoded[1], Payload: v.decoded[2 : len(v.decoded)-2]}
			wire, err := f.Marshal()
			if err != nil || !bytes.Equal(wire, v.wire) {
				t.Errorf("%s: marshal = % x (%v), want % x", v.name, wire, err, v.wire)
			}
			got, err := ParseFrame(v.wire[:len(v.wire)-1])
			if err != nil || got.Type != f.Type || !bytes.Equal(got.Payload, f.Payload) {
				t.Errorf("%s: parse = %+v %v", v.name, got, err)
			}
		case "bad":
			_, err := ParseFrame(v.wire)
			want := map[string]error{"crc": ErrCRC, "cobs": ErrCOBS, "short": ErrShort, "version": ErrVersion}[v.reason]
			if want == nil || !errors.Is(err, want) {
				t.Errorf("%s: %v, want %s", v.name, err, v.reason)
			}
		default:
			t.Errorf("%s: kind %q", v.name, v.kind)
		}
	}
}

// FuzzDecoder: any byte stream is survived, bounded, and good frames fed
// after it still decode.
func FuzzDecoder(f *testing.F) {
	for _, fr := range []Frame{Ping{Nonce: 1}.Frame(), Hello{Protocol: 1, Cols: 20, Rows: 6, Buttons: 5, BoardID: "x"}.Frame(), {Type: TypeHelloReq}} {
		w, _ := fr.Marshal()
		f.Add(w)
		f.Add(w[:len(w)/2])
	}
	f.Add([]byte{0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xFF}, 600))
	f.Add([]byte{0x02, 0x01, 0x00, 0x03})
	good, _ := ButtonEvent{Button: device.VolUp, Down: true, Millis: 42}.Frame().Marshal()
	f.Fuzz(func(t *testing.T, data []byte) {
		var dec Decoder
		for _, fr := range dec.Feed(data) {
			if len(fr.Payload) > MaxFrame {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			// Whatever decodes re-encodes to something that decodes the same.
			w, err := fr.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseFrame(w[:len(w)-1])
			if err != nil || back.Type != fr.Type || !bytes.Equal(back.Payload, fr.Payload) {
				t.Fatalf("re-encode: %+v %v", back, err)
			}
		}
		if len(dec.buf) > MaxFrame+MaxFrame/254+1 {
			t.Fatalf("buffer grew to %d", len(dec.buf))
		}
		// Resynchronises: a delimiter, then a good frame, decodes.
		got := dec.Feed(append([]byte{0}, good...))
		if len(got) != 1 || got[0].Type != TypeButton {
			t.Fatalf("after fuzz input, good frame gave %+v", got)
		}
	})
}

// TestFirmwareCodec compiles the firmware's C codec for this host and runs
// it on the shared vectors: two independent implementations, one file.
func TestFirmwareCodec(t *testing.T) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no C compiler (%s) in CI: .ci/run installs gcc", cc)
		}
		t.Skip("no C compiler (Debian package gcc); CI installs it")
	}
	bin := filepath.Join(t.TempDir(), "vectors")
	out, err := exec.Command(cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", bin,
		"firmware/vectors_main.c", "firmware/camotp_board/src/camotp_proto.c").CombinedOutput()
	if err != nil {
		t.Fatalf("compile firmware codec: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "testdata/vectors.txt").CombinedOutput()
	if err != nil {
		t.Fatalf("firmware codec on the shared vectors: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}
