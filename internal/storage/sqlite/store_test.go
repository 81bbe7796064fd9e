package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestReadYourWrites: a write that returned is seen by the next read, from
// any connection of the read pool, under concurrent group commits.
func TestReadYourWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	steps := int64(1000)
	if testing.Short() {
		steps = 50
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 2 { // transactions in the same groups
		wg.Go(func() {
			tok, _ := s.CreateToken(ctx, model.TokenPending, "u", "bodycam", "", time.Minute)
			for range 1000 {
				var err error
				if tok, err = s.ExchangeToken(ctx, tok, model.TokenPending, "u", "bodycam", "", time.Minute, model.AuditEntry{Action: "t"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for g := range 8 {
		wg.Go(func() {
			subject := fmt.Sprintf("s%d", g)
			for step := int64(1); step <= steps; step++ {
				won, err := s.AcceptStep(ctx, subject, 1, step, 0)
				if err != nil || !won {
					errs <- fmt.Errorf("%s step %d: won %v err %v", subject, step, won, err)
					return
				}
				st, found, err := s.OTPState(ctx, subject)
				if err != nil || !found || st.LastStep != step {
					errs <- fmt.Errorf("%s: wrote step %d, read %+v found %v err %v", subject, step, st, found, err)
					return
				}
				if won, _ := s.AcceptStep(ctx, subject, 1, step, 0); won {
					errs <- fmt.Errorf("%s: step %d accepted twice", subject, step)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
