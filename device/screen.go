package device

import "strings"

// The LCD of every model is a text grid of this size.
const (
	LCDWidth  = 20
	LCDHeight = 6
)

// ScreenID names a camera screen.
type ScreenID uint8

// The camera's screens.
const (
	HomeScreen ScreenID = iota + 1
	MenuScreen
	DeviceInfoScreen
	AuthenticatorScreen
	WirelessScreen
)

// Screen is what the camera shows: exactly LCDHeight lines of at most
// LCDWidth characters. Code and Remaining are set on the Authenticator screen
// when a code is shown, so panels and tests need not parse the text.
type Screen struct {
	ID    ScreenID
	Lines []string
	// Code is the verification code shown, or "".
	Code string
	// Remaining is the number of seconds the code stays current.
	Remaining int
}

// Text returns the screen as plain text, one LCD line per text line,
// trailing spaces trimmed.
func (s Screen) Text() string {
	var b strings.Builder
	for i, l := range s.Lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.TrimRight(l, " "))
	}
	return b.String()
}

// Equal reports whether two screens look the same.
func (s Screen) Equal(o Screen) bool {
	if s.ID != o.ID || s.Code != o.Code || s.Remaining != o.Remaining || len(s.Lines) != len(o.Lines) {
		return false
	}
	for i := range s.Lines {
		if s.Lines[i] != o.Lines[i] {
			return false
		}
	}
	return true
}

// newScreen pads or cuts lines to the LCD size.
func newScreen(id ScreenID, lines ...string) Screen {
	out := make([]string, LCDHeight)
	for i := range out {
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		r := []rune(l)
		if len(r) > LCDWidth {
			r = r[:LCDWidth]
		}
		out[i] = string(r) + strings.Repeat(" ", LCDWidth-len(r))
	}
	return Screen{ID: id, Lines: out}
}

// center centres s in the LCD width.
func center(s string) string {
	n := len([]rune(s))
	if n >= LCDWidth {
		return s
	}
	return strings.Repeat(" ", (LCDWidth-n)/2) + s
}
