package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/camotp/camotp/internal/model"
)

// TestBackupCodesKeyedAtRest: backup codes are kept as keyed hashes (HMAC
// under the master key), never the code or its plain SHA-256, so a stolen
// database file without master.key gives no usable code.
func TestBackupCodesKeyedAtRest(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, model.User{Username: "alice", Email: "alice@pd.example", Role: "officer"}, "x"); err != nil {
		t.Fatal(err)
	}
	codes := []string{"ABCD2345EFGH", "JKLM6789NPQR"}
	if err := s.SetBackupCodes(ctx, "alice", codes); err != nil {
		t.Fatal(err)
	}
	rows, err := s.rdb.Query(`SELECT hash FROM backup_codes WHERE username = 'alice'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		n++
		for _, c := range codes {
			sum := sha256.Sum256([]byte("alice\x00" + c))
			if len(h) != 32 || bytes.Contains(h, []byte(c)) || bytes.Equal(h, sum[:]) {
				t.Fatalf("backup code stored unkeyed: %x", h)
			}
		}
	}
	if n != len(codes) {
		t.Fatalf("%d stored codes, want %d", n, len(codes))
	}
	if ok, err := s.UseBackupCode(ctx, "alice", codes[1]); err != nil || !ok {
		t.Fatalf("use a stored code: %v %v", ok, err)
	}
}
