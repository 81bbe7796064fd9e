package model

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanLostReason(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"", "", nil},
		{"stolen from patrol car 12", "stolen from patrol car 12", nil},
		{"  dropped in the river \u00a0", "dropped in the river", nil},
		{"Verlust – Dienstwagen 7 ✓", "Verlust – Dienstwagen 7 ✓", nil},
		{strings.Repeat("x", MaxLostReason), strings.Repeat("x", MaxLostReason), nil},
		{strings.Repeat("x", MaxLostReason+1), "", ErrLostReasonTooLong},
		{" " + strings.Repeat("x", MaxLostReason) + " ", strings.Repeat("x", MaxLostReason), nil},
		{strings.Repeat("x", 10*MaxLostReason), "", ErrLostReasonTooLong},
		{"two\nlines", "", ErrLostReasonText},
		{"tab\there", "", ErrLostReasonText},
		{"nul\x00", "", ErrLostReasonText},
		{"bad \xff byte", "", ErrLostReasonText},
		{"line\u2028separator", "", ErrLostReasonText},
		{"escape \x1b[31m", "", ErrLostReasonText},
		{"del \x7f", "", ErrLostReasonText},
	} {
		got, err := CleanLostReason(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("CleanLostReason(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzCleanLostReason: whatever comes in, an accepted reason is one line
// of valid UTF-8 without control characters, within the bound, with no
// blank around it, and cleaning it again changes nothing; a refusal is
// one of the two errors.
func FuzzCleanLostReason(f *testing.F) {
	for _, s := range []string{"", "stolen", "  x  ", "a\nb", "\xff", strings.Repeat("é", 300), "\u2028", "\t", " \u3000x\u3000 ",
		strings.Repeat(" ", 2*MaxLostReason) + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CleanLostReason(in)
		if err != nil {
			if got != "" || !(errors.Is(err, ErrLostReasonTooLong) || errors.Is(err, ErrLostReasonText)) {
				t.Fatalf("%q: %q, %v", in, got, err)
			}
			return
		}
		if !utf8.ValidString(got) || len(got) > MaxLostReason || strings.TrimFunc(got, unicode.IsSpace) != got ||
			strings.IndexFunc(got, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) >= 0 {
			t.Fatalf("%q accepted as %q", in, got)
		}
		if !strings.Contains(in, got) {
			t.Fatalf("%q became %q, not a part of it", in, got)
		}
		if again, err := CleanLostReason(got); again != got || err != nil {
			t.Fatalf("%q cleaned again: %q, %v", got, again, err)
		}
	})
}

func TestCanBeFound(t *testing.T) {
	lost := &Lost{Version: 4}
	for _, tc := range []struct {
		c       Camera
		ok      bool
		notLost bool
		says    string
	}{
		{Camera{Serial: "S", State: StateProvisioned, Version: 3}, false, true, "not reported lost"},
		{Camera{Serial: "S", State: StateWiping, Version: 3, Lost: lost}, false, false, "wipe is not proven yet"},
		{Camera{Serial: "S", State: StateWiped, Version: 4, Lost: lost}, false, false, "camotp admin camera provision S"},
		{Camera{Serial: "S", State: StatePending, Version: 4, Lost: lost}, false, false, "fresh provision"},
		{Camera{Serial: "S", State: StateProvisioned, Version: 4, Lost: lost}, false, false, "fresh provision"},
		{Camera{Serial: "S", State: StateProvisioned, Version: 5, Lost: lost}, true, false, ""},
	} {
		err := CanBeFound(tc.c)
		var fe *FoundError
		switch {
		case tc.ok && err != nil, !tc.ok && !errors.As(err, &fe):
			t.Errorf("%+v: %v", tc.c, err)
		case !tc.ok && (fe.NotLost != tc.notLost || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%+v: %v (not lost %v), want %q", tc.c, err, fe.NotLost, tc.says)
		}
	}
}
