package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// A statement of the commit that ends a sign-in failing after the code's
// replay record was taken (here: a trigger refuses every change to
// tokens) fails the whole commit: no session, the pending token live, the
// step unused, no audit row — for an exchange and a consumption, reserved
// or not (found by review: the error was dropped and success reported).
func TestPassFailingLateUndoesAll(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	pending, err := s.CreateToken(ctx, model.TokenPending, "carol", "bodycam", "ip", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TRIGGER no_update BEFORE UPDATE ON tokens BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`,
		`CREATE TRIGGER no_delete BEFORE DELETE ON tokens BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`} {
		if _, err := s.exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	entry := model.AuditEntry{Actor: "carol", Action: "login.mfa", Subject: "carol", Result: "ok"}
	pair := model.ThrottleRule{Key: "otp:pair:carol", Limit: 3, Window: time.Minute, BlockBase: time.Minute, BlockMax: time.Minute}
	for i, settle := range []model.Settlement{{}, {Rules: []model.ThrottleRule{pair}, Unreserved: true, At: time.Now()}} {
		u := &model.StepUse{Subject: "cam:C", SeedVersion: 1, Step: int64(7 + i)}
		if _, err := s.ExchangeToken(ctx, pending, model.TokenSession, "carol", "bodycam", "ip", time.Hour, u, entry, settle); err == nil {
			t.Fatalf("settlement %d: ExchangeToken reported success although its token statement failed", i)
		}
		if err := s.ConsumeToken(ctx, pending, u, entry, settle); err == nil {
			t.Fatalf("settlement %d: ConsumeToken reported success although its token statement failed", i)
		}
	}
	if _, err := s.LookupToken(ctx, model.TokenPending, pending); err != nil {
		t.Fatalf("pending token: %v", err)
	}
	if st, found, err := s.OTPState(ctx, "cam:C"); err != nil || found {
		t.Fatalf("replay record %+v (found %v, %v): taken by a failed commit", st, found, err)
	}
	if log, err := s.AuditLog(ctx, "carol", 10); err != nil || len(log) != 0 {
		t.Fatalf("audit %v %v: written by a failed commit", log, err)
	}
	if ths, err := s.GetThrottles(ctx, pair.Key); err != nil || ths[0] != (model.Throttle{}) {
		t.Fatalf("counter %+v %v: a slot taken by a failed commit", ths, err)
	}
}
