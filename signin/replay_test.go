package signin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage/sqlite"
)

// staleStore is the real store whose replay records read as absent: what
// a check sees when it read the record just before a concurrent use of the
// same code committed.
type staleStore struct{ *sqlite.Store }

func (staleStore) OTPState(context.Context, string) (model.OTPState, bool, error) {
	return model.OTPState{}, false, nil
}

// cameraFixture is a real store and service at now with alice holding a
// provisioned Body 4 camera (SN1) of seed (its version set).
func cameraFixture(t *testing.T, now func() time.Time) (*sqlite.Store, *Service, device.Seed) {
	t.Helper()
	ctx := context.Background()
	st := newStore(t, t.TempDir(), now)
	if err := st.AddUser(ctx, model.User{Username: "alice", Email: "alice@pd.example"}, "hash"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddCamera(ctx, "SN1", device.Body4, "pub"); err != nil {
		t.Fatal(err)
	}
	seed := testSeed
	v, err := st.StartOp(ctx, "SN1", model.OpProvision, &seed, make([]byte, 32), func(uint64) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CompleteOp(ctx, "SN1", v); err != nil {
		t.Fatal(err)
	}
	if err := st.Assign(ctx, "SN1", "alice"); err != nil {
		t.Fatal(err)
	}
	seed.Version = v
	cfg := DefaultConfig()
	cfg.Argon2 = password.Params{Memory: 8 << 10, Time: 1, Threads: 1}
	svc, err := NewService(st, cfg, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, svc, seed
}

// A code whose step is used between the check and the commit that ends the
// sign-in (another sign-in with the same code won) is refused as a replay
// and counted as a failure; the sign-in stays pending and no session
// starts.
func TestCodeUsedDuringTheCheckIsAReplay(t *testing.T) {
	ctx, ip := context.Background(), "192.0.2.9"
	now := func() time.Time { return base }
	st, svc, seed := cameraFixture(t, now)
	cfg := DefaultConfig()
	cfg.Argon2 = password.Params{Memory: 8 << 10, Time: 1, Threads: 1}
	stale, err := NewService(staleStore{st}, cfg, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := codeAt(t, seed, 0)
	first, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, first, code, ip); err != nil {
		t.Fatalf("first use of the code: %v", err)
	}
	second, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stale.Verify(ctx, second, code, ip)
	var codeErr *CodeError
	if !errors.As(err, &codeErr) || !codeErr.Replayed || codeErr.AttemptsLeft != 2 {
		t.Fatalf("the code again, its use unseen by the check: %v, want a replay counted as a failure", err)
	}
	if _, err := st.LookupToken(ctx, model.TokenPending, second); err != nil {
		t.Fatalf("the second sign-in after the replay: %v, want still pending", err)
	}
	tokens, err := st.UserTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sessions := 0
	for _, tk := range tokens {
		if tk.Kind == model.TokenSession {
			sessions++
		}
	}
	if sessions != 1 {
		t.Fatalf("%d sessions, want 1", sessions)
	}
	log, err := st.AuditLog(ctx, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Result != "replayed" || log[1].Result != "ok" {
		t.Fatalf("audit %+v, want ok then replayed", log)
	}
	ths, err := st.GetThrottles(ctx, pairKey("otp", "alice", ip))
	if err != nil {
		t.Fatal(err)
	}
	if ths[0].Attempts != 1 {
		t.Fatalf("pair counter %+v, want the replay counted", ths[0])
	}
}
