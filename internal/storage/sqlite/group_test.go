package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// inOneGroup runs the calls so that the writer commits them in one group:
// it holds the writer in a transaction function until every call is
// queued behind it.
func inOneGroup(t *testing.T, s *Store, calls ...func()) {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	var once sync.Once
	defer once.Do(func() { close(release) })
	wg.Go(func() {
		s.tx(context.Background(), func(context.Context, *wtx) error {
			close(started)
			<-release
			return nil
		})
	})
	<-started
	for _, c := range calls {
		wg.Go(c)
	}
	for deadline := time.Now().Add(10 * time.Second); len(s.writes) < len(calls); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued", len(s.writes), len(calls))
		}
		time.Sleep(time.Millisecond)
	}
	once.Do(func() { close(release) })
}

// One group: a transaction function that fails after changing something
// leaves nothing behind, and every other write of its group commits (the
// group runs again with a savepoint around each function); functions
// that fail before changing anything cost no second run.
func TestGroupKeepsOthersWhenOneFails(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	pending, err := s.CreateToken(ctx, model.TokenPending, "carol", "bodycam", "ip", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	blocked := model.ThrottleRule{Key: "pair", Limit: 1, Window: time.Hour, BlockBase: time.Hour, BlockMax: time.Hour}
	if _, err := s.ReserveAttempt(ctx, time.Now(), blocked); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordFailure(ctx, time.Now(), blocked); err != nil {
		t.Fatal(err)
	}
	entry := model.AuditEntry{Actor: "x", Action: "login.mfa", Subject: "x", Result: "ok"}
	var (
		acceptA              bool
		errB, errC, errD     error
		session              string
		reserved             model.Reservation
		reruns0              = s.WriterStats().Reruns
		stepB, stepC, stepA0 = &model.StepUse{Subject: "cam:B", SeedVersion: 1, Step: 5}, &model.StepUse{Subject: "cam:C", SeedVersion: 1, Step: 7}, int64(3)
	)
	inOneGroup(t, s,
		func() { acceptA, _ = s.AcceptStep(ctx, "cam:A", 1, stepA0, 0) },
		// Takes its step, then finds its token unknown: all undone.
		func() {
			_, errB = s.ExchangeToken(ctx, "bm90LWEtdG9rZW4", model.TokenSession, "bob", "bodycam", "ip", time.Hour, stepB, entry, model.Settlement{})
		},
		func() {
			session, errC = s.ExchangeToken(ctx, pending, model.TokenSession, "carol", "bodycam", "ip", time.Hour, stepC, entry, model.Settlement{})
		},
		func() { reserved, errD = s.ReserveAttempt(ctx, time.Now(), blocked) },
	)
	if !acceptA {
		t.Fatal("the replay record of cam:A was not taken")
	}
	if !errors.Is(errB, storage.ErrNotFound) {
		t.Fatalf("exchange of an unknown token: %v", errB)
	}
	if _, found, _ := s.OTPState(ctx, "cam:B"); found {
		t.Fatal("the failed exchange's step was kept")
	}
	if errC != nil {
		t.Fatalf("exchange beside a failing one: %v", errC)
	}
	if _, err := s.LookupToken(ctx, model.TokenSession, session); err != nil {
		t.Fatalf("session: %v", err)
	}
	if st, found, _ := s.OTPState(ctx, "cam:C"); !found || st.LastStep != 7 {
		t.Fatalf("cam:C %+v %v", st, found)
	}
	if errD != nil || reserved.Granted {
		t.Fatalf("reservation on a blocked counter: %+v %v", reserved, errD)
	}
	if got := s.WriterStats().Reruns - reruns0; got != 1 {
		t.Fatalf("%d groups run again, want 1", got)
	}
	if log, _ := s.AuditLog(ctx, "", 10); len(log) != 1 {
		t.Fatalf("audit %+v, want the one exchange's entry", log)
	}

	// Failures that changed nothing: a used step, a blocked counter, an
	// unknown token. The group runs once.
	reruns0 = s.WriterStats().Reruns
	var errE, errF error
	inOneGroup(t, s,
		func() {
			_, errE = s.ExchangeToken(ctx, pending, model.TokenSession, "carol", "bodycam", "ip", time.Hour, stepC, entry, model.Settlement{})
		},
		func() { errF = s.ConsumeToken(ctx, "bm90LWEtdG9rZW4", nil, entry, model.Settlement{}) },
		func() { reserved, errD = s.ReserveAttempt(ctx, time.Now(), blocked) },
		func() { acceptA, _ = s.AcceptStep(ctx, "cam:A", 1, stepA0+1, 0) },
	)
	if !errors.Is(errE, storage.ErrStepUsed) || !errors.Is(errF, storage.ErrNotFound) || errD != nil || reserved.Granted || !acceptA {
		t.Fatalf("used step %v, unknown token %v, blocked %+v %v, accept %v", errE, errF, reserved, errD, acceptA)
	}
	if got := s.WriterStats().Reruns - reruns0; got != 0 {
		t.Fatalf("%d groups run again, want none", got)
	}
}
