package storagetest

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// consoleCases are the fleet console's reads and its all-or-nothing
// assignment. Every listing is checked against an oracle written here in
// Go (filters, search, sort, pages), so every backend gives the same
// answers, row for row.
func consoleCases() []testCase {
	return []testCase{
		{"Roles", func(t *testing.T, e *env) {
			for _, c := range []struct{ name, role, want string }{
				{"none", "", "officer"}, {"legacy", "user", "officer"}, {"officer", "officer", "officer"},
				{"admin", "admin", "admin"}, {"fleet", "fleet", "fleet"}, {"security", "security", "security"},
			} {
				must(t, e.s.AddUser(e.ctx, model.User{Username: c.name, Email: c.name + "@pd.example", Role: c.role}, "h"), "add "+c.name)
				if u, _, err := e.s.User(e.ctx, c.name); err != nil || u.Role != c.want {
					t.Fatalf("%s: role %q (%v), want %q", c.name, u.Role, err, c.want)
				}
			}
			if err := e.s.AddUser(e.ctx, model.User{Username: "x", Email: "x@pd.example", Role: "chief"}, "h"); err == nil {
				t.Fatal("an unknown role was stored")
			}
			if _, _, err := e.s.User(e.ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the user with an unknown role exists: %v", err)
			}
		}},
		{"CameraRowsAndFilters", func(t *testing.T, e *env) {
			want := buildFleet(t, e)
			queries := []model.CameraQuery{
				{},
				{State: model.StateProvisioned}, {State: model.StateRegistered}, {State: model.StatePending},
				{State: model.StateWiping}, {State: model.StateWiped},
				{Model: device.Body4}, {Model: device.Workforce},
				{Online: model.Yes}, {Online: model.No}, {Assigned: model.Yes}, {Assigned: model.No},
				{Search: "a-0"}, {Search: "ALI"}, {Search: "c-0"}, {Search: "zed"}, {Search: "  d-  "}, {Search: "nothing"},
				{State: model.StateProvisioned, Online: model.Yes, Assigned: model.Yes},
				{Model: device.Body4, Assigned: model.No, Search: "c"},
			}
			for _, q := range queries {
				q.Size = 100
				checkCameraPage(t, e, q, want)
			}
			// Every field of every row, as the single camera read has it too.
			for _, w := range want {
				got, err := e.s.CameraRow(e.ctx, w.Serial)
				must(t, err, "camera row "+w.Serial)
				if d := diffRow(got, w); d != "" {
					t.Fatalf("CameraRow(%s): %s", w.Serial, d)
				}
			}
			_, err := e.s.CameraRow(e.ctx, "NOPE")
			mustBe(t, err, storage.ErrNotFound, "unknown camera row")
		}},
		{"CameraSort", func(t *testing.T, e *env) {
			want := buildFleet(t, e)
			for _, sort := range model.CameraSorts {
				for _, desc := range []bool{false, true} {
					checkCameraPage(t, e, model.CameraQuery{Sort: sort, Desc: desc, Size: 100}, want)
				}
			}
			checkCameraPage(t, e, model.CameraQuery{Sort: "bogus", Size: 100}, want) // by serial
		}},
		{"CameraPages", func(t *testing.T, e *env) {
			want := buildFleet(t, e)
			for page := 1; page <= 4; page++ {
				checkCameraPage(t, e, model.CameraQuery{Sort: model.SortLastSeen, Desc: true, Size: 4, Page: page}, want)
				checkCameraPage(t, e, model.CameraQuery{Assigned: model.Yes, Sort: model.SortAssigned, Size: 2, Page: page}, want)
			}
			checkCameraPage(t, e, model.CameraQuery{Page: -3, Size: 1000}, want) // clamped: page 1, MaxPageSize
		}},
		{"LastSignInOfTheCommit", func(t *testing.T, e *env) {
			// The commit that ends a sign-in takes the replay record: it
			// says when a code of the camera was last accepted.
			e.addUser(t, "alice")
			v := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			tok, err := e.s.CreateToken(e.ctx, model.TokenPending, "alice", "bodycam", "192.0.2.1", time.Hour)
			must(t, err, "pending token")
			e.clock.Advance(90 * time.Second)
			use := &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v, Step: 1000, Drift: 3}
			_, err = e.s.ExchangeToken(e.ctx, tok, model.TokenSession, "alice", "bodycam", "192.0.2.1", time.Hour, use,
				model.AuditEntry{Actor: "alice", Action: model.AuditSignIn, Subject: "alice", Result: "ok"}, model.Settlement{})
			must(t, err, "exchange")
			r, err := e.s.CameraRow(e.ctx, "CAM-1")
			must(t, err, "row")
			if r.LastSignIn == nil || !r.LastSignIn.Equal(T0.Add(90*time.Second)) || r.Offset == nil || *r.Offset != 3 ||
				r.SeedAt == nil || !r.SeedAt.Equal(T0) {
				t.Fatalf("row after a sign-in: %+v (last sign-in %v, offset %v, seed at %v)", r, r.LastSignIn, r.Offset, r.SeedAt)
			}
		}},
		{"AssignAllOrNothing", func(t *testing.T, e *env) {
			for _, u := range []string{"alice", "bob", "carol"} {
				e.addUser(t, u)
			}
			for _, sn := range []string{"CAM-1", "CAM-2", "CAM-3"} {
				e.addCamera(t, sn)
			}
			must(t, e.s.Assign(e.ctx, "CAM-3", "carol"), "assign CAM-3")
			bad := []model.Assignment{{Serial: "CAM-1", Username: "alice"}, {Serial: "CAM-2", Username: "bob"}, {Serial: "CAM-3", Username: "alice"}}
			err := e.s.AssignAll(e.ctx, bad)
			var ae *model.AssignmentError
			if !errors.As(err, &ae) || ae.Index != 2 || !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("AssignAll with a taken camera: %v, want an AssignmentError at 2 wrapping ErrConflict", err)
			}
			for _, sn := range []string{"CAM-1", "CAM-2"} {
				if c, _ := e.s.Camera(e.ctx, sn); c.AssignedUser != "" {
					t.Fatalf("%s assigned to %q: a refused AssignAll changed something", sn, c.AssignedUser)
				}
			}
			for _, c := range []struct {
				as    []model.Assignment
				index int
				want  error
			}{
				{[]model.Assignment{{Serial: "CAM-1", Username: "nobody"}}, 0, storage.ErrNotFound},
				{[]model.Assignment{{Serial: "CAM-1", Username: "alice"}, {Serial: "NOPE", Username: "bob"}}, 1, storage.ErrNotFound},
				{[]model.Assignment{{Serial: "CAM-1", Username: "alice"}, {Serial: "CAM-2", Username: "alice"}}, 1, storage.ErrConflict}, // one camera per user
				{[]model.Assignment{{Serial: "CAM-1", Username: "alice"}, {Serial: "CAM-1", Username: "bob"}}, 1, storage.ErrConflict},   // one user per camera
			} {
				err := e.s.AssignAll(e.ctx, c.as)
				if !errors.As(err, &ae) || ae.Index != c.index || !errors.Is(err, c.want) {
					t.Fatalf("AssignAll(%v): %v, want row %d: %v", c.as, err, c.index, c.want)
				}
			}
			must(t, e.s.AssignAll(e.ctx, []model.Assignment{{Serial: "CAM-1", Username: "alice"}, {Serial: "CAM-2", Username: "bob"}, {Serial: "CAM-3", Username: "carol"}}), "AssignAll")
			for sn, u := range map[string]string{"CAM-1": "alice", "CAM-2": "bob", "CAM-3": "carol"} {
				if c, _ := e.s.Camera(e.ctx, sn); c.AssignedUser != u {
					t.Fatalf("%s assigned to %q, want %s", sn, c.AssignedUser, u)
				}
			}
			must(t, e.s.AssignAll(e.ctx, nil), "AssignAll of nothing")
		}},
		{"UserPage", func(t *testing.T, e *env) {
			users := []model.User{
				{Username: "alice", Email: "alice@pd.example", Role: "officer"},
				{Username: "bob", Email: "bob@pd.example", Role: "officer"},
				{Username: "carol", Email: "carol@fleet.example", Role: "fleet"},
				{Username: "dave", Email: "dave@pd.example", Role: "security"},
				{Username: "Erin", Email: "erin@hq.example", Role: "admin"},
			}
			for _, u := range users {
				must(t, e.s.AddUser(e.ctx, u, "h"), "add "+u.Username)
			}
			e.addCamera(t, "CAM-1")
			must(t, e.s.Assign(e.ctx, "CAM-1", "bob"), "assign")
			for _, a := range []model.AuditEntry{
				{Actor: "alice", Action: model.AuditSignIn, Subject: "alice", Result: "ok", At: T0.Add(time.Hour)},
				{Actor: "alice", Action: model.AuditSignIn, Subject: "alice", Result: "ok", At: T0.Add(30 * time.Minute)},
				{Actor: "alice", Action: model.AuditSignIn, Subject: "alice", Result: "invalid", At: T0.Add(2 * time.Hour)},
				{Actor: "alice", Action: "login.password", Subject: "alice", Result: "ok", At: T0.Add(3 * time.Hour)},
				{Actor: "bob", Action: model.AuditSignIn, Subject: "bob", Result: "not required", At: T0.Add(4 * time.Hour)},
				{Actor: "dave", Action: model.AuditSignIn, Subject: "carol", Result: "failed", At: T0.Add(5 * time.Hour)},
			} {
				must(t, e.s.Audit(e.ctx, a), "audit")
			}
			last := map[string]time.Time{"alice": T0.Add(time.Hour), "bob": T0.Add(4 * time.Hour)}
			check := func(q model.UserQuery, names ...string) {
				t.Helper()
				p, err := e.s.UserPage(e.ctx, q)
				must(t, err, "user page")
				var got []string
				for _, u := range p.Users {
					got = append(got, u.Username)
					want := last[u.Username]
					if (u.LastSignIn == nil) != want.IsZero() || (u.LastSignIn != nil && !u.LastSignIn.Equal(want)) {
						t.Fatalf("%s: last sign-in %v, want %v", u.Username, u.LastSignIn, want)
					}
					if (u.Username == "bob") != (u.Camera == "CAM-1") || u.Subject == "" || u.Email == "" {
						t.Fatalf("row %+v", u)
					}
				}
				if !slices.Equal(got, names) {
					t.Fatalf("UserPage(%+v): %v, want %v", q, got, names)
				}
			}
			all := []string{"Erin", "alice", "bob", "carol", "dave"} // byte order
			check(model.UserQuery{}, all...)
			check(model.UserQuery{Role: model.RoleOfficer}, "alice", "bob")
			check(model.UserQuery{Role: model.RoleAdmin}, "Erin")
			check(model.UserQuery{Search: "ERIN"}, "Erin")
			check(model.UserQuery{Search: "pd.EXAMPLE"}, "alice", "bob", "dave")
			check(model.UserQuery{Search: "a", Role: model.RoleFleet}, "carol")
			check(model.UserQuery{Size: 2, Page: 2}, "bob", "carol")
			check(model.UserQuery{WithoutCamera: true, Role: model.RoleOfficer}, "alice")
			check(model.UserQuery{WithoutCamera: true, Search: "b"}) // bob has CAM-1
			check(model.UserQuery{Names: []string{"dave", "Erin", "nobody", "bob"}}, "Erin", "bob", "dave")
			check(model.UserQuery{Names: []string{}})
			check(model.UserQuery{Names: []string{"alice", "bob"}, Role: model.RoleOfficer, Size: 1, Page: 2}, "bob")
			check(model.UserQuery{Size: 2, Page: 3}, "dave")
			check(model.UserQuery{Size: 2, Page: 4})
			p, err := e.s.UserPage(e.ctx, model.UserQuery{Size: 1, Page: 3, Search: "O"}) // bob, carol
			if err != nil || p.Total != 2 || len(p.Users) != 0 {
				t.Fatalf("past the last page: %d users of %d (%v), want none of 2", len(p.Users), p.Total, err)
			}
		}},
		{"ThrottleRanges", func(t *testing.T, e *env) {
			keys := []string{"otp:pair:alice\x00192.0.2.1", "otp:pair:alice\x00192.0.2.2", "otp:acct:alice",
				"otp:acct:alice2", "otp:pair:alice2\x00192.0.2.1", "password:acct:alice", "send:pair:alicia\x00192.0.2.9"}
			for _, k := range keys {
				_, err := e.s.ReserveAttempt(e.ctx, e.now(), model.ThrottleRule{Key: k, Limit: 3, Window: time.Minute, BlockBase: time.Minute, BlockMax: time.Minute})
				must(t, err, "reserve "+k)
			}
			rule := model.ThrottleRule{Key: keys[0], Limit: 1, Window: time.Minute, BlockBase: 10 * time.Minute, BlockMax: 10 * time.Minute}
			_, err := e.s.RecordFailure(e.ctx, e.now(), rule)
			must(t, err, "block")
			ranges := []model.KeyRange{model.KeyPrefix("otp:pair:alice\x00"), model.ExactKey("otp:acct:alice"), model.ExactKey("password:acct:alice")}
			got, err := e.s.ThrottlesIn(e.ctx, ranges...)
			must(t, err, "throttles in")
			var gotKeys []string
			for _, k := range got {
				gotKeys = append(gotKeys, k.Key)
			}
			want := []string{"otp:acct:alice", "otp:pair:alice\x00192.0.2.1", "otp:pair:alice\x00192.0.2.2", "password:acct:alice"}
			if !slices.Equal(gotKeys, want) {
				t.Fatalf("ThrottlesIn: %q, want %q", gotKeys, want)
			}
			if !got[1].BlockedUntil.Equal(T0.Add(10*time.Minute)) || got[2].Attempts != 1 || !got[2].BlockedUntil.IsZero() {
				t.Fatalf("counters %+v", got)
			}
			if n, err := e.s.ClearThrottles(e.ctx, ranges...); err != nil || n != 4 {
				t.Fatalf("ClearThrottles: %d %v, want 4", n, err)
			}
			rest, err := e.s.ThrottlesIn(e.ctx, model.KeyPrefix("o"), model.KeyPrefix("p"), model.KeyPrefix("s"))
			must(t, err, "the rest")
			if len(rest) != 3 || rest[0].Key != "otp:acct:alice2" || rest[1].Key != "otp:pair:alice2\x00192.0.2.1" || rest[2].Key != keys[6] {
				t.Fatalf("left after clearing alice's: %+v", rest)
			}
			if n, err := e.s.ClearThrottles(e.ctx, ranges...); err != nil || n != 0 {
				t.Fatalf("ClearThrottles again: %d %v", n, err)
			}
			if got, err := e.s.ThrottlesIn(e.ctx); err != nil || len(got) != 0 {
				t.Fatalf("ThrottlesIn of no range: %+v %v", got, err)
			}
		}},
		{"AuditFilters", func(t *testing.T, e *env) {
			log := auditFixture(t, e, 40)
			for _, f := range []model.AuditFilter{
				{}, {Actor: "alice"}, {Actor: "ali*"}, {Actor: "*"}, {Subject: "CAM-1"}, {Subject: "CAM-*"},
				{Action: "login.*"}, {Action: "login.mfa"}, {Result: "error*"}, {Result: "ok"}, {Source: "192.0.2.*"},
				{Source: "198.51.100.7"}, {From: T0.Add(10 * time.Minute)}, {To: T0.Add(10 * time.Minute)},
				{From: T0.Add(5 * time.Minute), To: T0.Add(25 * time.Minute), Action: "login.*", Result: "ok"},
				{Actor: "nobody"}, {Action: "LOGIN.*"},
			} {
				checkAuditPages(t, e, f, log)
			}
		}},
		{"AuditEachStreamsEveryRow", func(t *testing.T, e *env) {
			log := auditFixture(t, e, 1010) // more than two batches
			f := model.AuditFilter{Action: "login.*"}
			want := filterAudit(log, f)
			var got []model.AuditEntry
			err := e.s.AuditEach(e.ctx, f, func(a model.AuditEntry) error {
				if len(got) == 0 { // written meanwhile: not part of this read
					must(t, e.s.Audit(e.ctx, model.AuditEntry{Actor: "late", Action: "login.mfa", Subject: "x", Result: "ok"}), "audit")
				}
				got = append(got, a)
				return nil
			})
			must(t, err, "AuditEach")
			sameAudit(t, got, want, "AuditEach login.*")
			got = got[:0]
			must(t, e.s.AuditEach(e.ctx, model.AuditFilter{}, func(a model.AuditEntry) error {
				got = append(got, a)
				return nil
			}), "AuditEach all")
			late := model.AuditEntry{Actor: "late", Action: "login.mfa", Subject: "x", Result: "ok", At: e.now()}
			sameAudit(t, got, append([]model.AuditEntry{late}, filterAudit(log, model.AuditFilter{})...), "AuditEach all")
			stop := errors.New("enough")
			n := 0
			err = e.s.AuditEach(e.ctx, model.AuditFilter{}, func(model.AuditEntry) error {
				if n++; n == 700 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || n != 700 {
				t.Fatalf("AuditEach stopped by fn: %v after %d rows", err, n)
			}
		}},
	}
}

// diffRow says how got differs from want ("" when it does not).
func diffRow(got, want model.CameraRow) string {
	c, w := got.Camera, want.Camera
	if c.Serial != w.Serial || c.Model != w.Model || c.State != w.State || c.PendingOp != w.PendingOp || c.Online != w.Online ||
		c.AssignedUser != w.AssignedUser || c.Version != w.Version || c.PublicKey != w.PublicKey || !c.CreatedAt.Equal(w.CreatedAt) {
		return fmt.Sprintf("camera %+v, want %+v", c, w)
	}
	for _, tc := range []struct {
		name      string
		got, want *time.Time
	}{{"last seen", c.LastSeen, w.LastSeen}, {"seed at", got.SeedAt, want.SeedAt}, {"last sign-in", got.LastSignIn, want.LastSignIn}} {
		if (tc.got == nil) != (tc.want == nil) || (tc.got != nil && !tc.got.Equal(*tc.want)) {
			return fmt.Sprintf("%s %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if (got.Offset == nil) != (want.Offset == nil) || (got.Offset != nil && *got.Offset != *want.Offset) {
		return fmt.Sprintf("offset %v, want %v", got.Offset, want.Offset)
	}
	return ""
}

// buildFleet registers nine cameras in every state, online or not, seen or
// not, assigned or not, with replay records of this seed and of an older
// one, and returns them as the listing must show them.
func buildFleet(t *testing.T, e *env) []model.CameraRow {
	t.Helper()
	for _, u := range []string{"alice", "bob", "carol", "dave", "Zed"} {
		e.addUser(t, u)
	}
	models := map[string]device.Model{"A-01": device.Body4, "A-02": device.Body3, "B-01": device.Workforce, "B-02": device.Body4,
		"C-01": device.Body3, "C-02": device.Body4, "c-03": device.Body4, "D-01": device.Workforce, "D-02": device.Body4}
	for _, sn := range slices.Sorted(maps.Keys(models)) {
		must(t, e.s.AddCamera(e.ctx, sn, models[sn], "pub:"+sn), "add "+sn)
	}
	at := func(m int) { // move the clock to T0 + m minutes
		t.Helper()
		d := T0.Add(time.Duration(m) * time.Minute).Sub(e.now())
		if d < 0 {
			t.Fatalf("the clock cannot go back to +%dm", m)
		}
		e.clock.Advance(d)
	}
	complete := func(sn string, op model.Op, s *device.Seed) {
		t.Helper()
		v := e.startOp(t, sn, op, s)
		_, err := e.s.CompleteOp(e.ctx, sn, v)
		must(t, err, fmt.Sprintf("complete %s %s", op, sn))
	}
	accept := func(sn string, version uint64, drift int64) {
		t.Helper()
		ok, err := e.s.AcceptStep(e.ctx, model.CameraSubject(sn), version, 1000, drift)
		if err != nil || !ok {
			t.Fatalf("accept a step of %s: %v %v", sn, ok, err)
		}
	}
	s := testSeed(7)
	at(1)
	complete("A-01", model.OpProvision, &s)
	at(2)
	complete("A-02", model.OpProvision, &s)
	at(3)
	complete("C-01", model.OpProvision, &s)
	at(4)
	complete("C-02", model.OpProvision, &s)
	at(5)
	complete("D-01", model.OpProvision, &s)
	at(6)
	complete("D-02", model.OpProvision, &s)
	accept("A-01", 1, 1)
	at(7)
	accept("A-02", 1, -2)
	at(8)
	accept("C-01", 1, 0)
	complete("C-01", model.OpWipe, nil)
	at(9)
	accept("D-02", 1, 0)
	at(10)
	complete("D-02", model.OpRotate, &s)
	at(11)
	e.startOp(t, "C-02", model.OpWipe, nil)
	e.startOp(t, "B-02", model.OpProvision, &s)
	for sn, u := range map[string]string{"A-01": "alice", "A-02": "bob", "B-02": "carol", "c-03": "Zed", "D-01": "dave"} {
		must(t, e.s.Assign(e.ctx, sn, u), "assign "+sn)
	}
	for _, sn := range []string{"A-01", "B-02", "D-01"} {
		must(t, e.s.SetPresence(e.ctx, sn, true, T0.Add(2*time.Minute)), "online "+sn)
	}
	for sn, m := range map[string]int{"A-01": 5, "A-02": 1, "B-02": 3, "C-01": 2, "D-01": 4} {
		must(t, e.s.Touch(e.ctx, sn, T0.Add(time.Duration(m)*time.Minute)), "touch "+sn)
	}
	tm := func(m int) *time.Time {
		x := T0.Add(time.Duration(m) * time.Minute)
		return &x
	}
	off := func(o int64) *int64 { return &o }
	row := func(sn string, state model.CameraState, pending model.Op, version uint64, user string, online bool,
		seen, seedAt *time.Time, offset *int64, lastSignIn *time.Time) model.CameraRow {
		return model.CameraRow{Camera: model.Camera{Serial: sn, Model: models[sn], PublicKey: "pub:" + sn, State: state,
			Version: version, PendingOp: pending, AssignedUser: user, LastSeen: seen, Online: online, CreatedAt: T0},
			SeedAt: seedAt, Offset: offset, LastSignIn: lastSignIn}
	}
	rows := []model.CameraRow{
		row("A-01", model.StateProvisioned, "", 1, "alice", true, tm(5), tm(1), off(1), tm(6)),
		row("A-02", model.StateProvisioned, "", 1, "bob", false, tm(1), tm(2), off(-2), tm(7)),
		row("B-01", model.StateRegistered, "", 0, "", false, nil, nil, nil, nil),
		row("B-02", model.StatePending, model.OpProvision, 0, "carol", true, tm(3), nil, nil, nil),
		row("C-01", model.StateWiped, "", 2, "", false, tm(2), nil, nil, tm(8)),
		row("C-02", model.StateWiping, model.OpWipe, 1, "", false, nil, nil, nil, nil),
		row("c-03", model.StateRegistered, "", 0, "Zed", false, nil, nil, nil, nil),
		row("D-01", model.StateProvisioned, "", 1, "dave", true, tm(4), tm(5), nil, nil),
		row("D-02", model.StateProvisioned, "", 2, "", false, nil, tm(10), nil, tm(9)),
	}
	rows[3].PendingVersion, rows[5].PendingVersion = 1, 2
	return rows
}

// lowerASCII is the search's case folding.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// expectCameras is the oracle of CameraPage: rows filtered, sorted and cut
// to the page, and the number matching.
func expectCameras(rows []model.CameraRow, q model.CameraQuery) ([]model.CameraRow, int) {
	key := lowerASCII(strings.TrimSpace(q.Search))
	tri := func(f model.Tri, v bool) bool { return f == model.Any || (f == model.Yes) == v }
	var out []model.CameraRow
	for _, r := range rows {
		if (q.State != "" && r.State != q.State) || (q.Model != "" && r.Model != q.Model) ||
			!tri(q.Online, r.Online) || !tri(q.Assigned, r.AssignedUser != "") ||
			(key != "" && !strings.Contains(lowerASCII(r.Serial), key) && !strings.Contains(lowerASCII(r.AssignedUser), key)) {
			continue
		}
		out = append(out, r)
	}
	stateRank := map[model.CameraState]int{model.StateRegistered: 0, model.StatePending: 1, model.StateProvisioned: 2, model.StateWiping: 3, model.StateWiped: 4}
	ms := func(t *time.Time) *int64 {
		if t == nil {
			return nil
		}
		v := t.UnixMilli()
		return &v
	}
	num := func(a, b *int64, desc bool) int { // unknown last either way
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		case desc:
			return cmp.Compare(*b, *a)
		}
		return cmp.Compare(*a, *b)
	}
	dir := func(c int, desc bool) int {
		if desc {
			return -c
		}
		return c
	}
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	sort, desc := q.SortKey(), q.Desc
	slices.SortStableFunc(out, func(a, b model.CameraRow) int {
		var c int
		switch sort {
		case model.SortSerial:
			return dir(strings.Compare(a.Serial, b.Serial), desc)
		case model.SortModel:
			c = dir(strings.Compare(string(a.Model), string(b.Model)), desc)
		case model.SortState:
			c = dir(cmp.Compare(stateRank[a.State], stateRank[b.State]), desc)
		case model.SortOnline:
			c = dir(cmp.Compare(b2i(a.Online), b2i(b.Online)), desc)
		case model.SortLastSeen:
			c = num(ms(a.LastSeen), ms(b.LastSeen), desc)
		case model.SortAssigned:
			switch {
			case a.AssignedUser == "" && b.AssignedUser == "":
			case a.AssignedUser == "":
				c = 1
			case b.AssignedUser == "":
				c = -1
			default:
				c = dir(strings.Compare(a.AssignedUser, b.AssignedUser), desc)
			}
		case model.SortSeed:
			c = dir(cmp.Compare(a.Version, b.Version), desc)
		case model.SortSeedAge: // greater age: older seed
			c = num(ms(a.SeedAt), ms(b.SeedAt), !desc)
		case model.SortOffset:
			c = num(a.Offset, b.Offset, desc)
		case model.SortLastSignIn:
			c = num(ms(a.LastSignIn), ms(b.LastSignIn), desc)
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.Serial, b.Serial)
	})
	total := len(out)
	page, size := q.Bounds()
	from := min((page-1)*size, total)
	return out[from:min(from+size, total)], total
}

// checkCameraPage compares CameraPage(q) with the oracle, row for row.
func checkCameraPage(t *testing.T, e *env, q model.CameraQuery, rows []model.CameraRow) {
	t.Helper()
	want, total := expectCameras(rows, q)
	got, err := e.s.CameraPage(e.ctx, q)
	must(t, err, fmt.Sprintf("CameraPage(%+v)", q))
	serials := func(rs []model.CameraRow) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Serial)
		}
		return out
	}
	if got.Total != total || !slices.Equal(serials(got.Cameras), serials(want)) {
		t.Fatalf("CameraPage(%+v): %v of %d, want %v of %d", q, serials(got.Cameras), got.Total, serials(want), total)
	}
	for i := range want {
		if d := diffRow(got.Cameras[i], want[i]); d != "" {
			t.Fatalf("CameraPage(%+v) row %d: %s", q, i, d)
		}
	}
}

// auditFixture writes n rows whose fields vary independently and returns
// them, oldest first.
func auditFixture(t *testing.T, e *env, n int) []model.AuditEntry {
	t.Helper()
	actors := []string{"admin", "alice", "bob"}
	actions := []string{"login.mfa", "login.password", "camera.assign", "user.reset-mfa"}
	subjects := []string{"alice", "CAM-1", "CAM-12", "bob", "org"}
	results := []string{"ok", "failed", "error: camera CAM-1 is wiped", "blocked", "ok", "invalid"}
	sources := []string{"192.0.2.1", "192.0.2.20", "198.51.100.7", ""}
	out := make([]model.AuditEntry, n)
	for i := range n {
		a := model.AuditEntry{Actor: actors[i%3], Action: actions[i%4], Subject: subjects[i%5], Result: results[i%6],
			SourceIP: sources[i%4], Detail: fmt.Sprintf("row %d", i), At: T0.Add(time.Duration(i) * time.Minute)}
		must(t, e.s.Audit(e.ctx, a), "audit")
		out[i] = a
	}
	return out
}

// filterAudit is the oracle of an audit filter: the rows it selects,
// newest first.
func filterAudit(log []model.AuditEntry, f model.AuditFilter) []model.AuditEntry {
	match := func(field, v string) bool {
		m := model.Match(field)
		if m.Prefix {
			return strings.HasPrefix(v, m.Value)
		}
		return v == m.Value
	}
	var out []model.AuditEntry
	for i := len(log) - 1; i >= 0; i-- {
		a := log[i]
		if (!f.From.IsZero() && a.At.Before(f.From)) || (!f.To.IsZero() && !a.At.Before(f.To)) ||
			!match(f.Actor, a.Actor) || !match(f.Subject, a.Subject) || !match(f.Action, a.Action) ||
			!match(f.Result, a.Result) || !match(f.Source, a.SourceIP) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// sameAudit fails t unless got are want's rows, in order, with IDs
// decreasing.
func sameAudit(t *testing.T, got, want []model.AuditEntry, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Actor != w.Actor || g.Action != w.Action || g.Subject != w.Subject || g.Result != w.Result ||
			g.SourceIP != w.SourceIP || g.Detail != w.Detail || !g.At.Equal(w.At) {
			t.Fatalf("%s: row %d %+v, want %+v", what, i, g, w)
		}
		if g.ID <= 0 || (i > 0 && g.ID >= got[i-1].ID) {
			t.Fatalf("%s: row %d ID %d after %d: want positive IDs, newest (highest) first", what, i, g.ID, got[max(i-1, 0)].ID)
		}
	}
}

// checkAuditPages reads f's rows a page of 7 at a time, back to the
// oldest and forward again, and compares them with the oracle.
func checkAuditPages(t *testing.T, e *env, f model.AuditFilter, log []model.AuditEntry) {
	t.Helper()
	want := filterAudit(log, f)
	var all []model.AuditEntry
	var pages [][]model.AuditEntry
	q := model.AuditQuery{AuditFilter: f, Limit: 7}
	for {
		p, err := e.s.AuditPage(e.ctx, q)
		must(t, err, fmt.Sprintf("AuditPage(%+v)", q))
		if len(p) == 0 {
			break
		}
		pages = append(pages, p)
		all = append(all, p...)
		q.Before = p[len(p)-1].ID
	}
	sameAudit(t, all, want, fmt.Sprintf("filter %+v, pages back", f))
	for i := len(pages) - 2; i >= 0; i-- { // forward again from the oldest page
		next := pages[i+1]
		p, err := e.s.AuditPage(e.ctx, model.AuditQuery{AuditFilter: f, Limit: 7, After: next[0].ID})
		must(t, err, "page forward")
		sameAudit(t, p, pages[i][max(len(pages[i])-7, 0):], fmt.Sprintf("filter %+v, page %d forward", f, i))
	}
}
