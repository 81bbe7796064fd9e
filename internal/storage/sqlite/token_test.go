package sqlite

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
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

// A pending token is exchanged once: of 16 concurrent exchanges one makes
// a session, the others fail with ErrNotFound and write nothing.
func TestExchangeTokenOnce(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	tok, err := s.CreateToken(ctx, model.TokenPending, "u", "bodycam", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var won, lost atomic.Int32
	together.Run(16, func(i int) {
		_, err := s.ExchangeToken(ctx, tok, model.TokenSession, "u", "bodycam", "", time.Minute, model.AuditEntry{Action: "t", Subject: "u"})
		switch {
		case err == nil:
			won.Add(1)
		case errors.Is(err, storage.ErrNotFound):
			lost.Add(1)
		default:
			t.Error(err)
		}
	})
	toks, err := s.UserTokens(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := s.AuditLog(ctx, "u", 100)
	if won.Load() != 1 || lost.Load() != 15 || len(toks) != 1 || toks[0].Kind != model.TokenSession || len(log) != 1 {
		t.Fatalf("won %d lost %d; tokens %+v; %d audit rows", won.Load(), lost.Load(), toks, len(log))
	}
	if err := s.ConsumeToken(ctx, tok, model.AuditEntry{Action: "t", Subject: "u"}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consume an exchanged token: %v", err)
	}
}
