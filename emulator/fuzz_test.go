package emulator

import (
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
)

// FuzzParseScript: a --script value either fails with an error naming the
// event, or gives steps that are each a wait of 0 to MaxWait or a gesture on
// a real button; written back in the script syntax they parse the same.
func FuzzParseScript(f *testing.F) {
	for _, s := range []string{
		"double:select,press:voldown,press:select",
		"long:program, wait:31s ,press:select",
		"wait:24h", "wait:24h1ns", "wait:-1s", "wait:1e3s",
		"", " , ", "press", "press:", "tap:select", "press:Select", "double:power,wait:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := ParseScript(s)
		if err != nil {
			if !strings.Contains(err.Error(), "script event ") {
				t.Fatalf("ParseScript(%q) error does not name the event: %v", s, err)
			}
			return
		}
		if len(steps) > strings.Count(s, ",")+1 {
			t.Fatalf("ParseScript(%q): %d steps from %d events", s, len(steps), strings.Count(s, ",")+1)
		}
		var out []string
		for _, st := range steps {
			switch st.Kind {
			case 0:
				if st.Wait < 0 || st.Wait > MaxWait || st.Button != 0 {
					t.Fatalf("ParseScript(%q): bad wait %+v", s, st)
				}
				out = append(out, "wait:"+st.Wait.String())
			case device.Press, device.DoublePress, device.LongPress:
				if st.Button < device.Select || st.Button > device.Power || st.Wait != 0 {
					t.Fatalf("ParseScript(%q): bad gesture %+v", s, st)
				}
				verb := map[device.GestureKind]string{device.Press: "press", device.DoublePress: "double", device.LongPress: "long"}[st.Kind]
				out = append(out, verb+":"+st.Button.String())
			default:
				t.Fatalf("ParseScript(%q): kind %d", s, st.Kind)
			}
		}
		again, err := ParseScript(strings.Join(out, ","))
		if err != nil || len(again) != len(steps) {
			t.Fatalf("round trip of %q via %q: %+v %v", s, strings.Join(out, ","), again, err)
		}
		for i := range steps {
			if again[i] != steps[i] {
				t.Fatalf("round trip of %q: step %d %+v, then %+v", s, i, steps[i], again[i])
			}
		}
	})
}
