package signin

import "testing"

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
