package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/netip"
	"strings"
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

// TestRadiusSecretSealedAtRest: a RADIUS client's row holds its shared
// secret sealed with the master key, bound to the client's name: no
// plaintext, and a row moved to another name does not open.
func TestRadiusSecretSealedAtRest(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	secret := []byte("s3cret-shared-with-the-vpn-box")
	if err := s.AddRadiusClient(ctx, model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.1.2.0/24"), Secret: secret}); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := s.rdb.QueryRow(`SELECT secret FROM radius_clients`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, secret) || strings.Contains(string(raw), "s3cret") {
		t.Fatal("the secret is stored in plaintext")
	}
	if _, err := s.exec(ctx, `UPDATE radius_clients SET name = 'other'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RadiusClients(ctx); err == nil {
		t.Fatal("a secret sealed for vpn1 opened as other's")
	}
}
