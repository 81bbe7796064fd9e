package provisioning_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

func TestParseBulk(t *testing.T) {
	t.Parallel()
	type row struct {
		line             int
		serial, username string
		bad              bool
	}
	tests := []struct {
		name string
		in   string
		want []row
		err  string
	}{
		{"plain", "BC4-1,alice\nBC3-2,bob\n", []row{{1, "BC4-1", "alice", false}, {2, "BC3-2", "bob", false}}, ""},
		{"header, spaces, CRLF, BOM, blank lines", "\uFEFFSerial , Username\r\n BC4-1 , alice \r\n\r\nBC3-2,bob", []row{{2, "BC4-1", "alice", false}, {4, "BC3-2", "bob", false}}, ""},
		{"quoted", "\"BC4-1\",\"alice\"\n", []row{{1, "BC4-1", "alice", false}}, ""},
		{"a row with the wrong number of fields is a bad row", "BC4-1\nBC3-2,bob,extra\nWF-3,carol\n", []row{{1, "BC4-1", "", true}, {2, "BC3-2", "", true}, {3, "WF-3", "carol", false}}, ""},
		{"malformed quotes name the line", "BC4-1,alice\nBC3-2,\"bob\n", nil, "line 2"},
		{"empty", "", nil, provisioning.ErrBulkEmpty.Error()},
		{"header only", "serial,username\n", nil, provisioning.ErrBulkEmpty.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := provisioning.ParseBulk(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows %+v, want %d", len(rows), rows, len(tc.want))
			}
			for i, w := range tc.want {
				r := rows[i]
				if r.Line != w.line || r.Serial != w.serial || (!w.bad && r.Username != w.username) || (r.Status == provisioning.BulkInvalid) != w.bad {
					t.Fatalf("row %d: %+v, want %+v", i, r, w)
				}
			}
		})
	}
}

// The limits of a bulk file: the bytes and the rows, each just within and
// just past it.
func TestParseBulkLimits(t *testing.T) {
	t.Parallel()
	rows := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "S-%d,u%d\n", i, i)
		}
		return b.String()
	}
	big := strings.Repeat("x", provisioning.MaxBulkBytes-len(",u\n")) + ",u\n"
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"max rows", rows(provisioning.MaxBulkRows), nil},
		{"one row more", rows(provisioning.MaxBulkRows + 1), provisioning.ErrBulkTooMany},
		{"max bytes", big, nil},
		{"one byte more", "x" + big, provisioning.ErrBulkTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := provisioning.ParseBulk(strings.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
	enc := provisioning.EncodeRows([]provisioning.BulkRow{{Line: 7, Serial: "BC4-1", Username: "a,b"}})
	back, err := provisioning.DecodeRows(enc)
	if err != nil || len(back) != 1 || back[0].Line != 7 || back[0].Username != "a,b" {
		t.Fatalf("rows carried: %+v %v", back, err)
	}
	if _, err := provisioning.DecodeRows(strings.Repeat("1,a,b\n", provisioning.MaxBulkRows+1)); !errors.Is(err, provisioning.ErrBulkTooMany) {
		t.Fatalf("too many carried rows: %v", err)
	}
}

// nopStarter starts no operation.
type nopStarter struct{}

func (nopStarter) Start(context.Context, string, model.Op, string, string) (uint64, error) {
	return 0, nil
}

func (nopStarter) ReportLost(context.Context, string, string, string, string) (model.LostOutcome, error) {
	return model.LostOutcome{}, nil
}

func (nopStarter) Found(context.Context, string, string, string) (model.Camera, error) {
	return model.Camera{}, nil
}

func TestCheckAndApplyAssignments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, _ := masterkey.New(make([]byte, 32))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "f.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if err := st.AddUser(ctx, model.User{Username: u, Email: u + "@pd.example"}, "h"); err != nil {
			t.Fatal(err)
		}
	}
	for _, sn := range []string{"C-1", "C-2", "C-3", "C-4"} {
		if err := st.AddCamera(ctx, sn, device.Body4, "pk"); err != nil {
			t.Fatal(err)
		}
	}
	st.Assign(ctx, "C-3", "carol")
	st.Assign(ctx, "C-4", "dave")
	fleet := provisioning.NewFleet(st, nopStarter{})
	rows := []provisioning.BulkRow{
		{Line: 1, Serial: "C-1", Username: "alice"},
		{Line: 2, Serial: "C-3", Username: "carol"},                                    // unchanged
		{Line: 3, Serial: "C-3", Username: "dave"},                                     // C-3 twice
		{Line: 4, Serial: "C-2", Username: "alice"},                                    // alice twice
		{Line: 5, Serial: "C-9", Username: "bob"},                                      // no camera
		{Line: 6, Serial: "C-4", Username: "zed"},                                      // no user
		{Line: 7, Serial: "bad serial", Username: "bob"},                               // not a serial
		{Line: 8, Serial: "C-2", Username: "dave"},                                     // dave has C-4
		{Line: 9, Serial: "C-4", Username: ""},                                         // no username
		{Line: 10, Serial: "X", Status: provisioning.BulkInvalid, Problem: "1 fields"}, // malformed
	}
	want := []struct {
		status  provisioning.BulkStatus
		problem string
	}{
		{provisioning.BulkAssign, ""}, {provisioning.BulkUnchanged, "assigned so already"},
		{provisioning.BulkInvalid, "also on line 2"}, {provisioning.BulkInvalid, "also on line 1"},
		{provisioning.BulkInvalid, "no camera C-9"}, {provisioning.BulkInvalid, "no user zed"},
		{provisioning.BulkInvalid, "invalid serial"}, {provisioning.BulkInvalid, "dave already has camera C-4"},
		{provisioning.BulkInvalid, "no username"}, {provisioning.BulkInvalid, "1 fields"},
	}
	got, err := fleet.CheckAssignments(ctx, rows, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if got[i].Status != w.status || !strings.Contains(got[i].Problem, w.problem) {
			t.Errorf("line %d: %s %q, want %s %q", got[i].Line, got[i].Status, got[i].Problem, w.status, w.problem)
		}
	}
	// A file with a bad row applies nothing.
	if _, err := fleet.ApplyAssignments(ctx, rows, true, "fran", "192.0.2.1"); !errors.Is(err, provisioning.ErrBulkHasErrors) {
		t.Fatalf("apply with bad rows: %v", err)
	}
	if c, _ := st.Camera(ctx, "C-1"); c.AssignedUser != "" {
		t.Fatal("a bad file assigned C-1")
	}
	// A camera for a staff account: only when an administrator applies the
	// file (a camera is its holder's second factor).
	if err := st.AddUser(ctx, model.User{Username: "chief", Role: string(model.RoleAdmin)}, "h"); err != nil {
		t.Fatal(err)
	}
	staff := []provisioning.BulkRow{{Line: 1, Serial: "C-2", Username: "chief"}}
	if got, err := fleet.CheckAssignments(ctx, staff, true); err != nil || got[0].Status != provisioning.BulkInvalid || !strings.Contains(got[0].Problem, "not an officer") {
		t.Fatalf("a camera for an admin, checked for a fleet manager: %+v %v", got, err)
	}
	if got, err := fleet.CheckAssignments(ctx, staff, false); err != nil || got[0].Status != provisioning.BulkAssign {
		t.Fatalf("a camera for an admin, checked for an admin: %+v %v", got, err)
	}
	done, err := fleet.ApplyAssignments(ctx, rows[:2], true, "fran", "192.0.2.1")
	if err != nil || done[0].Status != provisioning.BulkAssigned || done[1].Status != provisioning.BulkUnchanged {
		t.Fatalf("apply: %+v %v", done, err)
	}
	if c, _ := st.Camera(ctx, "C-1"); c.AssignedUser != "alice" {
		t.Fatalf("C-1 assigned to %q", c.AssignedUser)
	}
	log, _ := st.AuditLog(ctx, "C-1", 1)
	if len(log) != 1 || log[0].Action != "camera.assign" || log[0].Actor != "fran" || log[0].SourceIP != "192.0.2.1" || log[0].Detail != "user alice (bulk)" {
		t.Fatalf("audit: %+v", log)
	}
	summary, _ := st.AuditLog(ctx, "fleet", 5)
	if len(summary) != 1 || summary[0].Action != "camera.bulk-assign" || summary[0].Detail != "2 rows, 1 assignments" {
		t.Fatalf("bulk audit rows: %+v", summary)
	}
}

// The admin API adds users of every role; the old "user" is an officer,
// and answers so.
func TestAdminAPIUserRoles(t *testing.T) {
	t.Parallel()
	srv := testenv.Server(t, t.TempDir(), nil)
	for _, c := range []struct{ role, want string }{
		{"", "officer"}, {"user", "officer"}, {"officer", "officer"}, {"admin", "admin"}, {"fleet", "fleet"}, {"security", "security"},
	} {
		name := "u-" + c.want + "-" + c.role
		status, body := testenv.API(t, srv, srv.AdminToken, "POST", "/api/v1/admin/users",
			provisioning.UserRequest{Username: name, Email: name + "@pd.example", Password: "long enough pw", Role: c.role})
		if status != 201 || body["role"] != c.want {
			t.Fatalf("role %q: %d %v, want %s", c.role, status, body, c.want)
		}
		if u, _, err := srv.Store.User(t.Context(), name); err != nil || u.Role != c.want {
			t.Fatalf("stored role of %s: %q %v", name, u.Role, err)
		}
	}
	log, _ := srv.Store.AuditLog(t.Context(), "u-fleet-fleet", 1)
	if len(log) != 1 || log[0].Action != "user.add" || log[0].Detail != "role fleet" {
		t.Fatalf("audit: %+v", log)
	}
}
