package hw

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// FuzzDecoder checks what the Decoder promises for any byte stream:
//
//   - it never panics and buffers at most maxBlock bytes;
//   - its output is that of the reference split: the stream cut at every
//     0x00, each non-empty block of at most maxBlock bytes through
//     ParseFrame, the good frames in order; bytes after the last 0x00 are a
//     pending block, not a frame yet;
//   - the output does not depend on how the stream is cut into Feed calls;
//   - Stats count each completed non-empty block once: Frames good,
//     Dropped() the rest;
//   - every frame re-encodes to a frame that parses the same;
//   - it resynchronises: one 0x00 completes at most the pending block (so
//     at most one frame: a valid frame still missing its delimiter is one),
//     and a good frame fed after it decodes alone.
func FuzzDecoder(f *testing.F) {
	for _, fr := range []Frame{Ping{Nonce: 1}.Frame(), Hello{Protocol: 1, Cols: 20, Rows: 6, Buttons: 5, BoardID: "x"}.Frame(), {Type: TypeHelloReq}} {
		w, _ := fr.Marshal()
		f.Add(w)
		f.Add(w[:len(w)/2])
		f.Add(w[:len(w)-1]) // a whole frame without its delimiter
	}
	f.Add([]byte{0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xFF}, 600))
	f.Add([]byte{0x02, 0x01, 0x00, 0x03})
	f.Add(append(bytes.Repeat([]byte{7}, maxBlock), 0))
	f.Add(append(bytes.Repeat([]byte{7}, maxBlock+1), 0))
	good, _ := ButtonEvent{Button: device.VolUp, Down: true, Millis: 42}.Frame().Marshal()
	f.Fuzz(func(t *testing.T, data []byte) {
		want, blocks, pending := referenceSplit(data)
		var dec Decoder
		got := dec.Feed(data)
		if !sameFrames(got, want) {
			t.Fatalf("decoded %+v, reference split gives %+v", got, want)
		}
		if st := dec.Stats(); st.Frames != uint64(len(want)) || st.Frames+st.Dropped() != uint64(blocks) {
			t.Fatalf("stats %+v for %d frames of %d blocks", st, len(want), blocks)
		}
		if len(dec.buf) > maxBlock {
			t.Fatalf("buffer grew to %d", len(dec.buf))
		}
		// Cut anywhere: the same frames.
		cut := len(data) / 3
		var split Decoder
		if parts := append(split.Feed(data[:cut]), split.Feed(data[cut:])...); !sameFrames(parts, want) {
			t.Fatalf("cut at %d: %+v, whole: %+v", cut, parts, want)
		}
		for _, fr := range got {
			if len(fr.Payload) > MaxFrame-4 {
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
		// Resynchronises: the delimiter completes only the pending block...
		flushed := dec.Feed([]byte{0})
		if len(pending) > maxBlock && len(flushed) != 0 {
			t.Fatalf("oversize pending block gave %+v", flushed)
		}
		if len(pending) <= maxBlock {
			fr, err := ParseFrame(pending)
			if len(pending) == 0 || err != nil {
				if len(flushed) != 0 {
					t.Fatalf("bad pending block % x gave %+v", pending, flushed)
				}
			} else if !sameFrames(flushed, []Frame{fr}) {
				t.Fatalf("pending block % x gave %+v, want %+v", pending, flushed, fr)
			}
		}
		// ... and a good frame then decodes alone.
		after := dec.Feed(good)
		if len(after) != 1 || after[0].Type != TypeButton {
			t.Fatalf("after fuzz input and a delimiter, good frame gave %+v", after)
		}
	})
}

// maxBlock is the longest COBS block a decoded frame of MaxFrame bytes
// needs; the Decoder buffers no more.
const maxBlock = MaxFrame + MaxFrame/254 + 1

// referenceSplit is the Decoder's specification: the stream cut at every
// 0x00 into blocks, the good frames of the completed non-empty blocks, how
// many such blocks there were, and the pending bytes after the last 0x00.
func referenceSplit(data []byte) (frames []Frame, blocks int, pending []byte) {
	parts := bytes.Split(data, []byte{0})
	for _, block := range parts[:len(parts)-1] {
		if len(block) == 0 {
			continue
		}
		blocks++
		if len(block) > maxBlock {
			continue
		}
		if fr, err := ParseFrame(block); err == nil {
			frames = append(frames, fr)
		}
	}
	return frames, blocks, parts[len(parts)-1]
}

func sameFrames(a, b []Frame) bool {
	return slices.EqualFunc(a, b, func(x, y Frame) bool { return x.Type == y.Type && bytes.Equal(x.Payload, y.Payload) })
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
