package storagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Tampered is a fresh store whose database the test may also change
// directly, as someone with write access to it would: Exec runs one
// statement of plain SQL (no parameters) on it.
type Tampered struct {
	Store storage.Store
	Exec  func(t *testing.T, q string)
	// Reopen closes Store and opens the database again.
	Reopen func(t *testing.T) storage.Store
}

// RunTamper makes the edits someone with write access to the database
// would make to the audit log, each on a fresh store from open, and
// checks that VerifyAudit finds each at the row where it was made. Unlike
// the rest of the suite it needs SQL, the same text on every backend.
func RunTamper(t *testing.T, open func(t *testing.T) Tampered) {
	cases := []struct {
		name string
		// edit makes the change in chain c, whose last row is n.
		edit func(c int, n int64) string
		// seq is where the break must be found (0: in no chain); reason
		// is a piece of what it must say.
		seq    func(n int64) int64
		reason string
	}{
		{"EditedRow", func(c int, _ int64) string {
			return fmt.Sprintf(`UPDATE audit SET result = 'ok' WHERE chain = %d AND seq = 3`, c)
		}, func(int64) int64 { return 3 }, "edited"},
		{"EditedTime", func(c int, _ int64) string {
			return fmt.Sprintf(`UPDATE audit SET at = at - 60000 WHERE chain = %d AND seq = 4`, c)
		}, func(int64) int64 { return 4 }, "edited"},
		{"DeletedRow", func(c int, _ int64) string {
			return fmt.Sprintf(`DELETE FROM audit WHERE chain = %d AND seq = 3`, c)
		}, func(int64) int64 { return 3 }, "missing"},
		{"Reordered", func(c int, _ int64) string {
			return fmt.Sprintf(`UPDATE audit SET seq = CASE seq WHEN 3 THEN -4 ELSE -3 END WHERE chain = %[1]d AND seq IN (3, 4);
				UPDATE audit SET seq = -seq WHERE chain = %[1]d AND seq < 0`, c)
		}, func(int64) int64 { return 3 }, "reordered"},
		{"DeletedLastRow", func(c int, n int64) string {
			return fmt.Sprintf(`DELETE FROM audit WHERE chain = %d AND seq = %d`, c, n)
		}, func(n int64) int64 { return n }, "deleted from its end"},
		{"InsertedRow", func(int, int64) string {
			return `INSERT INTO audit (at, actor, action, subject, result) VALUES (1, 'admin', 'camera.wipe', 'CAM-9', 'ok')`
		}, func(int64) int64 { return 0 }, "inserted into the database directly"},
		{"ForgedLink", func(c int, n int64) string {
			return fmt.Sprintf(`INSERT INTO audit (at, actor, action, subject, result, chain, seq) VALUES (1, 'admin', 'camera.wipe', 'CAM-9', 'ok', %d, %d)`, c, n+1)
		}, func(n int64) int64 { return n + 1 }, "edited"},
		{"RowAtPlaceZero", func(c int, _ int64) string {
			return fmt.Sprintf(`INSERT INTO audit (at, actor, action, subject, result, chain, seq) VALUES (1, 'admin', 'camera.wipe', 'CAM-9', 'ok', %d, 0)`, c)
		}, func(int64) int64 { return 0 }, "inserted into the database directly"},
		{"RowAtNegativePlace", func(c int, _ int64) string {
			return fmt.Sprintf(`INSERT INTO audit (at, actor, action, subject, result, chain, seq) VALUES (1, 'chief', 'user.reset-mfa', 'alice', 'ok', %d, -7)`, c)
		}, func(int64) int64 { return 0 }, "inserted into the database directly"},
		{"EditedHead", func(c int, _ int64) string {
			return fmt.Sprintf(`UPDATE audit_head SET mac = NULL WHERE chain = %d`, c)
		}, func(n int64) int64 { return n }, "head"},
	}
	t.Run("LegacyRowsLinked", func(t *testing.T) {
		t.Parallel()
		legacy(t, open(t))
	})
	t.Run("LegacyMarkSetLater", func(t *testing.T) {
		t.Parallel()
		legacyLater(t, open(t))
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := open(t)
			ctx := context.Background()
			// Enough rows that the busiest chain has more than 5.
			for i := range 16 * d.Store.AuditChains() {
				e := model.AuditEntry{Actor: "officer", Action: "login.mfa", Subject: fmt.Sprintf("user%d", i), Result: "error: wrong code",
					At: T0.Add(time.Duration(i) * time.Second)}
				if err := d.Store.Audit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			before, err := d.Store.VerifyAudit(ctx)
			if err != nil || before.Broken != nil {
				t.Fatalf("untouched log: %+v %v", before, err)
			}
			busiest := before.Heads[0]
			for _, h := range before.Heads {
				if h.Seq > busiest.Seq {
					busiest = h
				}
			}
			if busiest.Seq < 6 {
				t.Fatalf("busiest chain has %d rows", busiest.Seq)
			}
			for _, q := range strings.Split(tc.edit(busiest.Chain, busiest.Seq), ";") {
				d.Exec(t, q)
			}
			v, err := d.Store.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b := v.Broken
			switch {
			case b == nil:
				t.Fatalf("verify found nothing wrong: %+v", v)
			case tc.seq(busiest.Seq) == 0 && b.Chain != -1,
				tc.seq(busiest.Seq) != 0 && (b.Chain != busiest.Chain || b.Seq != tc.seq(busiest.Seq)),
				!strings.Contains(b.Reason, tc.reason):
				t.Fatalf("break %+v, want chain %d row %d (%q)", b, busiest.Chain, tc.seq(busiest.Seq), tc.reason)
			}
			t.Logf("%s: %s", tc.name, b.Reason)
		})
	}
}

// legacy makes d's rows what they were before the chains (migration 11:
// no place, no MAC, the head waiting for them) and reopens it: the rows
// are linked, oldest first, and new ones follow them.
func legacy(t *testing.T, d Tampered) {
	ctx := context.Background()
	for i := range 20 {
		if err := d.Store.Audit(ctx, model.AuditEntry{Actor: "admin", Action: "camera.add", Subject: fmt.Sprintf("CAM-%d", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	d.Exec(t, `UPDATE audit SET chain = NULL, seq = NULL, mac = NULL`)
	d.Exec(t, `UPDATE audit_head SET seq = 0, mac = NULL, legacy_upto = 0`)
	d.Exec(t, `UPDATE audit_head SET legacy_upto = (SELECT MAX(id) FROM audit) WHERE chain = 0`)
	if v, err := d.Store.VerifyAudit(ctx); err != nil || v.Broken == nil || v.Broken.Chain != -1 {
		t.Fatalf("rows not linked yet: %+v %v", v, err)
	}
	s := d.Reopen(t)
	if err := s.Audit(ctx, model.AuditEntry{Actor: "admin", Action: "camera.add", Subject: "CAM-new", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	v, err := s.VerifyAudit(ctx)
	if err != nil || v.Broken != nil || v.Rows != 21 {
		t.Fatalf("after reopening: %+v %v", v, err)
	}
	first, err := s.AuditAfter(ctx, 0, 0, 20)
	if err != nil || len(first) != 20 {
		t.Fatalf("chain 0: %d rows %v", len(first), err)
	}
	for i, e := range first {
		if e.Subject != fmt.Sprintf("CAM-%d", i) || e.Seq != int64(i+1) {
			t.Fatalf("chain 0 row %d: %+v, want the old rows in their order", i, e)
		}
	}
}

// legacyLater inserts a row into d's database and sets the head's
// legacy_upto past it, as someone who read the migration would, and
// reopens it: a chain that has rows already links nothing, and the row
// stays reported as inserted.
func legacyLater(t *testing.T, d Tampered) {
	ctx := context.Background()
	for i := range 5 {
		if err := d.Store.Audit(ctx, model.AuditEntry{Actor: "admin", Action: "camera.add", Subject: fmt.Sprintf("CAM-%d", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	d.Exec(t, `INSERT INTO audit (at, actor, action, subject, result, detail) VALUES (1, 'admin', 'camera.wipe', 'CAM-9', 'ok', 'forged')`)
	d.Exec(t, `UPDATE audit_head SET legacy_upto = (SELECT MAX(id) FROM audit) WHERE chain = 0`)
	s := d.Reopen(t)
	v, err := s.VerifyAudit(ctx)
	if err != nil || v.Broken == nil || v.Broken.Chain != -1 || !strings.Contains(v.Broken.Reason, "inserted into the database directly") {
		t.Fatalf("after reopening with legacy_upto set: %+v %v (broken %+v), want the inserted row reported", v, err, v.Broken)
	}
}
