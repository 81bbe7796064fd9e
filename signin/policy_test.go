package signin

import (
	"testing"
	"unicode/utf8"
)

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		ok      bool
	}{
		{[]string{"bodycam"}, true},
		{[]string{"app", "bodycam"}, true},
		{nil, false},
		{[]string{"bodycam", "bodycam"}, false},
		{[]string{"fax"}, false},
		{[]string{"sms", "call", "email"}, true},
		{[]string{"bodycam", "app", "sms", "call", "email", "app"}, false},
	} {
		err := Policy{RequireMFA: true, Methods: tc.methods}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.methods, err)
		}
	}
}

func TestClientText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"alice", 256, "alice"},
		{"evil\x00name", 256, "evil\uFFFDname"},
		{"bad\xffutf8", 256, "bad\uFFFDutf8"},
		{"ééé", 5, "éé"}, // 6 bytes: cut before the third, not inside it
		{"abc", 2, "ab"},
	} {
		if got := clientText(tc.in, tc.max); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("clientText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
