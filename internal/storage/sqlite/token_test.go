package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// ConsumeToken ends a pending token, writes the audit row and clears the
// throttle counters in one commit, and starts no session.
func TestConsumeToken(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := pairRule("otp:pair:alice\x00ip")
	tok, err := s.CreateToken(ctx, model.TokenPending, "alice", "bodycam", "ip", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveAttempt(ctx, t0, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordFailure(ctx, t0, r); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeToken(ctx, tok, model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok", SourceIP: "ip"}, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, model.TokenPending, tok); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("pending token after ConsumeToken: %v", err)
	}
	var sessions int
	if err := s.queryRow(ctx, `SELECT count(*) FROM tokens WHERE username = 'alice'`).Scan(&sessions); err != nil || sessions != 0 {
		t.Fatalf("%d tokens left for alice (%v), want none", sessions, err)
	}
	log, err := s.AuditLog(ctx, "alice", 10)
	if err != nil || len(log) != 1 || log[0].Action != "login.mfa" || log[0].Result != "ok" {
		t.Fatalf("audit %+v %v", log, err)
	}
	res, err := s.ReserveAttempt(ctx, t0, r)
	if err != nil || !res.Granted || res.Counters[0].Attempts != 1 {
		t.Fatalf("counter after ConsumeToken: %+v %v, want cleared (this attempt the first)", res, err)
	}
}
