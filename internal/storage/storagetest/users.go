package storagetest

import (
	"testing"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

func userCases() []testCase {
	return []testCase{
		{"AddAndRead", func(t *testing.T, e *env) {
			in := model.User{Username: "alice", Email: "alice@pd.example", Phone: "+15550100", Role: "officer"}
			must(t, e.s.AddUser(e.ctx, in, "hash-a"), "add")
			u, hash, err := e.s.User(e.ctx, "alice")
			must(t, err, "read")
			if u.Username != in.Username || u.Email != in.Email || u.Phone != in.Phone || u.Role != in.Role ||
				u.Camera != "" || u.LastMethod != "" || hash != "hash-a" {
				t.Fatalf("read %+v hash %q, want %+v hash hash-a", u, hash, in)
			}
			sameTime(t, u.CreatedAt, T0, "created")
			if u.Subject == "" || u.Subject == u.Username {
				t.Fatalf("subject %q: want a random identifier, not the username", u.Subject)
			}
		}},
		{"RoleDefaultsToOfficer", func(t *testing.T, e *env) {
			must(t, e.s.AddUser(e.ctx, model.User{Username: "bob", Email: "bob@pd.example"}, "h"), "add")
			if u, _, err := e.s.User(e.ctx, "bob"); err != nil || u.Role != "officer" {
				t.Fatalf("role %q (%v), want officer", u.Role, err)
			}
		}},
		{"DuplicateIsErrExists", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			err := e.s.AddUser(e.ctx, model.User{Username: "alice", Email: "other@pd.example"}, "other")
			mustBe(t, err, storage.ErrExists, "second alice")
			if u, hash, _ := e.s.User(e.ctx, "alice"); u.Email != "alice@pd.example" || hash != "hash:alice" {
				t.Fatalf("the refused duplicate changed alice: %+v %q", u, hash)
			}
		}},
		{"UnknownIsErrNotFound", func(t *testing.T, e *env) {
			_, _, err := e.s.User(e.ctx, "nobody")
			mustBe(t, err, storage.ErrNotFound, "User")
			_, err = e.s.UserBySubject(e.ctx, "0123456789abcdef")
			mustBe(t, err, storage.ErrNotFound, "UserBySubject")
			mustBe(t, e.s.SetPassword(e.ctx, "nobody", "h"), storage.ErrNotFound, "SetPassword")
		}},
		{"ListByUsernameWithCamera", func(t *testing.T, e *env) {
			if us, err := e.s.Users(e.ctx); err != nil || len(us) != 0 {
				t.Fatalf("empty store: %+v %v", us, err)
			}
			for _, n := range []string{"carol", "alice", "bob"} {
				e.addUser(t, n)
			}
			e.addCamera(t, "CAM-1")
			must(t, e.s.Assign(e.ctx, "CAM-1", "bob"), "assign")
			us, err := e.s.Users(e.ctx)
			must(t, err, "list")
			want := []struct{ name, camera string }{{"alice", ""}, {"bob", "CAM-1"}, {"carol", ""}}
			if len(us) != len(want) {
				t.Fatalf("%d users, want %d: %+v", len(us), len(want), us)
			}
			for i, w := range want {
				if us[i].Username != w.name || us[i].Camera != w.camera || us[i].Subject == "" {
					t.Fatalf("user %d: %+v, want %s with camera %q", i, us[i], w.name, w.camera)
				}
			}
			if u, _, _ := e.s.User(e.ctx, "bob"); u.Camera != "CAM-1" {
				t.Fatalf("User(bob).Camera %q, want CAM-1", u.Camera)
			}
		}},
		{"SetPassword", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			must(t, e.s.SetPassword(e.ctx, "alice", "new-hash"), "set")
			if _, hash, err := e.s.User(e.ctx, "alice"); err != nil || hash != "new-hash" {
				t.Fatalf("hash %q (%v), want new-hash", hash, err)
			}
		}},
		{"BySubject", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			a, _, _ := e.s.User(e.ctx, "alice")
			b, _, _ := e.s.User(e.ctx, "bob")
			if a.Subject == b.Subject {
				t.Fatalf("alice and bob share subject %q", a.Subject)
			}
			for _, want := range []model.User{a, b} {
				u, err := e.s.UserBySubject(e.ctx, want.Subject)
				if err != nil || u.Username != want.Username || u.Subject != want.Subject {
					t.Fatalf("by subject %q: %+v %v, want %s", want.Subject, u, err, want.Username)
				}
			}
			// The subject is stable: a password change keeps it.
			must(t, e.s.SetPassword(e.ctx, "alice", "h2"), "set password")
			if u, _, _ := e.s.User(e.ctx, "alice"); u.Subject != a.Subject {
				t.Fatalf("subject changed from %q to %q", a.Subject, u.Subject)
			}
		}},
		{"LastMethod", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			for _, m := range []string{"bodycam", model.MethodApp} {
				must(t, e.s.SetLastMethod(e.ctx, "alice", m), "set "+m)
				if u, _, err := e.s.User(e.ctx, "alice"); err != nil || u.LastMethod != m {
					t.Fatalf("last method %q (%v), want %q", u.LastMethod, err, m)
				}
			}
		}},
	}
}
