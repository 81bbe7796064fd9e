package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

func mfaCases() []testCase {
	return []testCase{
		{"Settings", func(t *testing.T, e *env) {
			if v, ok, err := e.s.Setting(e.ctx, "mfa.policy"); err != nil || ok || v != "" {
				t.Fatalf("unset setting: %q %v %v", v, ok, err)
			}
			must(t, e.s.SetSetting(e.ctx, "mfa.policy", "bodycam"), "set")
			must(t, e.s.SetSetting(e.ctx, "other", "x"), "set other")
			must(t, e.s.SetSetting(e.ctx, "mfa.policy", "any"), "overwrite")
			for key, want := range map[string]string{"mfa.policy": "any", "other": "x"} {
				if v, ok, err := e.s.Setting(e.ctx, key); err != nil || !ok || v != want {
					t.Fatalf("setting %s: %q %v %v, want %q", key, v, ok, err, want)
				}
			}
		}},
		{"AppEnrolmentExpires", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			_, err := e.s.Enrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "no enrolment")
			must(t, e.s.StartEnrolment(e.ctx, "alice", testSeed(1), 10*time.Minute), "start")
			e.clock.Advance(10*time.Minute - time.Second)
			s, err := e.s.Enrolment(e.ctx, "alice")
			must(t, err, "enrolment just before its end")
			sameSeed(t, s, testSeed(1), "enrolment")
			// Starting again replaces the seed and the deadline.
			must(t, e.s.StartEnrolment(e.ctx, "alice", testSeed(2), 10*time.Minute), "restart")
			e.clock.Advance(time.Minute)
			s, err = e.s.Enrolment(e.ctx, "alice")
			must(t, err, "restarted enrolment")
			sameSeed(t, s, testSeed(2), "restarted enrolment")
			e.clock.Advance(9 * time.Minute)
			_, err = e.s.Enrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "enrolment at its end")
		}},
		{"ConfirmApp", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			_, err := e.s.AppSeed(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "no app yet")
			must(t, e.s.StartEnrolment(e.ctx, "alice", testSeed(1), time.Hour), "start")
			must(t, e.s.ConfirmApp(e.ctx, "alice", testSeed(1)), "confirm")
			s, err := e.s.AppSeed(e.ctx, "alice")
			must(t, err, "app seed")
			sameSeed(t, s, testSeed(1), "app seed")
			_, err = e.s.Enrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "enrolment after confirmation")
			// A second app replaces the first.
			must(t, e.s.ConfirmApp(e.ctx, "alice", testSeed(2)), "confirm another")
			s, err = e.s.AppSeed(e.ctx, "alice")
			must(t, err, "app seed")
			sameSeed(t, s, testSeed(2), "replaced app seed")
			if ms, err := e.s.Methods(e.ctx, "alice"); err != nil || !slices.Equal(ms, []string{model.MethodApp}) {
				t.Fatalf("methods %v %v, want [app]", ms, err)
			}
			_, err = e.s.AppSeed(e.ctx, "bob")
			mustBe(t, err, storage.ErrNotFound, "bob's app")
		}},
		{"MethodsAndRemove", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			if ms, err := e.s.Methods(e.ctx, "alice"); err != nil || len(ms) != 0 {
				t.Fatalf("methods of a new user: %v %v", ms, err)
			}
			must(t, e.s.ConfirmPhone(e.ctx, "alice", "+15550100"), "confirm phone")
			must(t, e.s.ConfirmApp(e.ctx, "alice", testSeed(1)), "confirm app")
			if ms, err := e.s.Methods(e.ctx, "alice"); err != nil || !slices.Equal(ms, []string{model.MethodApp, model.MethodPhone}) {
				t.Fatalf("methods %v %v, want [app phone]", ms, err)
			}
			must(t, e.s.RemoveMethod(e.ctx, "alice", model.MethodApp), "remove app")
			mustBe(t, e.s.RemoveMethod(e.ctx, "alice", model.MethodApp), storage.ErrNotFound, "remove app again")
			_, err := e.s.AppSeed(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "app seed after removal")
			if ms, err := e.s.Methods(e.ctx, "alice"); err != nil || !slices.Equal(ms, []string{model.MethodPhone}) {
				t.Fatalf("methods %v %v, want [phone]", ms, err)
			}
			must(t, e.s.RemoveMethod(e.ctx, "alice", model.MethodPhone), "remove phone")
			_, err = e.s.Phone(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "phone after removal")
		}},
		{"ResetMFA", func(t *testing.T, e *env) {
			for _, u := range []string{"alice", "bob"} {
				e.addUser(t, u)
				must(t, e.s.ConfirmApp(e.ctx, u, testSeed(1)), "app")
				must(t, e.s.ConfirmPhone(e.ctx, u, "+15550100"), "phone")
				must(t, e.s.StartEnrolment(e.ctx, u, testSeed(2), time.Hour), "app enrolment")
				must(t, e.s.StartPhoneEnrolment(e.ctx, u, "+15550199", time.Hour), "phone enrolment")
				must(t, e.s.SetBackupCodes(e.ctx, u, []string{"AAAA", "BBBB"}), "backup codes")
				must(t, e.s.PutSentCode(e.ctx, u, "sms", "123456", time.Hour), "sent code")
				must(t, e.s.SetLastMethod(e.ctx, u, model.MethodApp), "last method")
			}
			trust, err := e.s.CreateToken(e.ctx, model.TokenTrust, "alice", "", "ip", time.Hour)
			must(t, err, "trust token")
			session, err := e.s.CreateToken(e.ctx, model.TokenSession, "alice", "app", "ip", time.Hour)
			must(t, err, "session token")
			bobTrust, err := e.s.CreateToken(e.ctx, model.TokenTrust, "bob", "", "ip", time.Hour)
			must(t, err, "bob's trust token")

			must(t, e.s.ResetMFA(e.ctx, "alice"), "reset")
			if ms, err := e.s.Methods(e.ctx, "alice"); err != nil || len(ms) != 0 {
				t.Fatalf("methods after reset: %v %v", ms, err)
			}
			_, err = e.s.AppSeed(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "app after reset")
			_, err = e.s.Phone(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "phone after reset")
			_, err = e.s.Enrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "app enrolment after reset")
			_, err = e.s.PhoneEnrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "phone enrolment after reset")
			if n, err := e.s.BackupCodesLeft(e.ctx, "alice"); err != nil || n != 0 {
				t.Fatalf("backup codes after reset: %d %v", n, err)
			}
			if ok, err := e.s.UseSentCode(e.ctx, "alice", "sms", "123456"); err != nil || ok {
				t.Fatalf("sent code after reset: %v %v", ok, err)
			}
			_, err = e.s.LookupToken(e.ctx, model.TokenTrust, trust)
			mustBe(t, err, storage.ErrNotFound, "trusted browser after reset")
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, session); err != nil {
				t.Fatalf("the session ended with the reset: %v", err)
			}
			if u, _, _ := e.s.User(e.ctx, "alice"); u.LastMethod != "" {
				t.Fatalf("last method %q after reset", u.LastMethod)
			}
			// Bob keeps everything.
			if ms, _ := e.s.Methods(e.ctx, "bob"); len(ms) != 2 {
				t.Fatalf("bob's methods %v after alice's reset", ms)
			}
			if n, _ := e.s.BackupCodesLeft(e.ctx, "bob"); n != 2 {
				t.Fatalf("bob's backup codes %d after alice's reset", n)
			}
			if _, err := e.s.LookupToken(e.ctx, model.TokenTrust, bobTrust); err != nil {
				t.Fatalf("bob's trusted browser after alice's reset: %v", err)
			}
			if _, err := e.s.Enrolment(e.ctx, "bob"); err != nil {
				t.Fatalf("bob's enrolment after alice's reset: %v", err)
			}
			if ok, _ := e.s.UseSentCode(e.ctx, "bob", "sms", "123456"); !ok {
				t.Fatal("bob's sent code died with alice's reset")
			}
		}},
		{"BackupCodesUseOnce", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			if n, err := e.s.BackupCodesLeft(e.ctx, "alice"); err != nil || n != 0 {
				t.Fatalf("codes of a new user: %d %v", n, err)
			}
			must(t, e.s.SetBackupCodes(e.ctx, "alice", []string{"C1C1C1", "C2C2C2", "C3C3C3"}), "set")
			uses := []struct {
				user, code string
				ok         bool
				left       int
			}{
				{"alice", "C2C2C2", true, 2},
				{"alice", "C2C2C2", false, 2}, // used
				{"alice", "WRONG1", false, 2},
				{"bob", "C1C1C1", false, 2}, // alice's code is not bob's
				{"alice", "C1C1C1", true, 1},
			}
			for i, u := range uses {
				ok, err := e.s.UseBackupCode(e.ctx, u.user, u.code)
				must(t, err, "use")
				n, err := e.s.BackupCodesLeft(e.ctx, "alice")
				must(t, err, "left")
				if ok != u.ok || n != u.left {
					t.Fatalf("use %d (%s %s): %v with %d left, want %v with %d", i, u.user, u.code, ok, n, u.ok, u.left)
				}
			}
			// New codes replace the old ones, used or not.
			must(t, e.s.SetBackupCodes(e.ctx, "alice", []string{"D1D1D1", "D2D2D2"}), "replace")
			if n, _ := e.s.BackupCodesLeft(e.ctx, "alice"); n != 2 {
				t.Fatalf("%d codes left after replacing, want 2", n)
			}
			if ok, _ := e.s.UseBackupCode(e.ctx, "alice", "C3C3C3"); ok {
				t.Fatal("a replaced code still works")
			}
			if ok, _ := e.s.UseBackupCode(e.ctx, "alice", "D1D1D1"); !ok {
				t.Fatal("a new code does not work")
			}
		}},
		{"SentCodeUseOnce", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "123456", 5*time.Minute), "put")
			must(t, e.s.PutSentCode(e.ctx, "alice", "email", "777777", 5*time.Minute), "put email")
			uses := []struct {
				user, purpose, code string
				ok                  bool
			}{
				{"alice", "sms", "654321", false}, // wrong: the code stays live
				{"bob", "sms", "123456", false},   // another user's
				{"alice", "email", "123456", false},
				{"alice", "sms", "123456", true},
				{"alice", "sms", "123456", false}, // used
				{"alice", "email", "777777", true},
			}
			for i, u := range uses {
				if ok, err := e.s.UseSentCode(e.ctx, u.user, u.purpose, u.code); err != nil || ok != u.ok {
					t.Fatalf("use %d (%s %s %s): %v %v, want %v", i, u.user, u.purpose, u.code, ok, err, u.ok)
				}
			}
			// A new code kills the earlier one.
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "111111", 5*time.Minute), "put")
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "222222", 5*time.Minute), "put again")
			if ok, _ := e.s.UseSentCode(e.ctx, "alice", "sms", "111111"); ok {
				t.Fatal("a replaced code works")
			}
			if ok, _ := e.s.UseSentCode(e.ctx, "alice", "sms", "222222"); !ok {
				t.Fatal("the live code does not work")
			}
		}},
		{"SentCodeExpires", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "123456", 5*time.Minute), "put")
			e.clock.Advance(5*time.Minute - time.Second)
			if ok, err := e.s.UseSentCode(e.ctx, "alice", "sms", "123456"); err != nil || !ok {
				t.Fatalf("code just before its end: %v %v", ok, err)
			}
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "654321", 5*time.Minute), "put")
			e.clock.Advance(5 * time.Minute)
			if ok, err := e.s.UseSentCode(e.ctx, "alice", "sms", "654321"); err != nil || ok {
				t.Fatalf("code at its end: %v %v", ok, err)
			}
		}},
		{"PhoneEnrolment", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			_, err := e.s.PhoneEnrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "no phone enrolment")
			must(t, e.s.StartPhoneEnrolment(e.ctx, "alice", "+15550100", 10*time.Minute), "start")
			must(t, e.s.StartPhoneEnrolment(e.ctx, "alice", "+15550111", 10*time.Minute), "restart")
			must(t, e.s.StartEnrolment(e.ctx, "alice", testSeed(1), 10*time.Minute), "app enrolment")
			if p, err := e.s.PhoneEnrolment(e.ctx, "alice"); err != nil || p != "+15550111" {
				t.Fatalf("phone enrolment %q %v, want the latest number", p, err)
			}
			_, err = e.s.Phone(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "phone before confirmation")
			must(t, e.s.ConfirmPhone(e.ctx, "alice", "+15550111"), "confirm")
			if p, err := e.s.Phone(e.ctx, "alice"); err != nil || p != "+15550111" {
				t.Fatalf("phone %q %v", p, err)
			}
			_, err = e.s.PhoneEnrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "phone enrolment after confirmation")
			if _, err := e.s.Enrolment(e.ctx, "alice"); err != nil {
				t.Fatalf("confirming the phone ended the app enrolment: %v", err)
			}
			if ms, _ := e.s.Methods(e.ctx, "alice"); !slices.Equal(ms, []string{model.MethodPhone}) {
				t.Fatalf("methods %v, want [phone]", ms)
			}
		}},
		{"PhoneEnrolmentExpires", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			must(t, e.s.StartPhoneEnrolment(e.ctx, "alice", "+15550100", 10*time.Minute), "start")
			e.clock.Advance(10*time.Minute - time.Second)
			if _, err := e.s.PhoneEnrolment(e.ctx, "alice"); err != nil {
				t.Fatalf("just before its end: %v", err)
			}
			e.clock.Advance(time.Second)
			_, err := e.s.PhoneEnrolment(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "at its end")
		}},
		{"Outbox", func(t *testing.T, e *env) {
			if ms, err := e.s.Outbox(e.ctx, 10); err != nil || len(ms) != 0 {
				t.Fatalf("empty outbox: %+v %v", ms, err)
			}
			in := []model.OutboxMessage{
				{Channel: "sms", Address: "+15550100", Body: "code 1"},
				{Channel: "email", Address: "alice@pd.example", Subject: "Your code", Body: "code 2"},
				{Channel: "call", Address: "+15550101", Body: "code 3"},
			}
			for _, m := range in {
				e.clock.Advance(time.Second)
				must(t, e.s.AddOutbox(e.ctx, m), "add")
			}
			got, err := e.s.Outbox(e.ctx, 2)
			must(t, err, "read")
			if len(got) != 2 {
				t.Fatalf("%d messages, want the newest 2", len(got))
			}
			for i, g := range got {
				w := in[2-i]
				if g.Channel != w.Channel || g.Address != w.Address || g.Subject != w.Subject || g.Body != w.Body || g.ID == 0 {
					t.Fatalf("message %d: %+v, want %+v", i, g, w)
				}
				sameTime(t, g.At, T0.Add(time.Duration(3-i)*time.Second), "message time")
			}
			if got[0].ID == got[1].ID {
				t.Fatalf("two messages with ID %d", got[0].ID)
			}
			if all, err := e.s.Outbox(e.ctx, 0); err != nil || len(all) != 3 {
				t.Fatalf("Outbox(0): %d messages %v, want all 3 (a default limit)", len(all), err)
			}
		}},
	}
}
