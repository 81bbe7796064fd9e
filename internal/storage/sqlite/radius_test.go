package sqlite

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// TestRadiusClients: a client's secret comes back as stored, is sealed in
// its row (the row holds no plaintext), names and CIDRs are unique, and
// removal is reported.
func TestRadiusClients(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	secret := []byte("s3cret-shared-with-the-vpn-box")
	c := model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.1.2.3/24"), Secret: secret}
	if err := s.AddRadiusClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []model.RadiusClient{
		{Name: "vpn1", CIDR: netip.MustParsePrefix("192.0.2.0/24"), Secret: secret},
		{Name: "vpn2", CIDR: netip.MustParsePrefix("10.1.2.0/24"), Secret: secret},
	} {
		if err := s.AddRadiusClient(ctx, dup); !errors.Is(err, storage.ErrExists) {
			t.Errorf("duplicate %+v: %v, want ErrExists", dup, err)
		}
	}
	list, err := s.RadiusClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "vpn1" || list[0].CIDR.String() != "10.1.2.0/24" || !bytes.Equal(list[0].Secret, secret) {
		t.Fatalf("clients: %+v", list)
	}
	var raw []byte
	if err := s.rdb.QueryRow(`SELECT secret FROM radius_clients`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, secret) || strings.Contains(string(raw), "s3cret") {
		t.Fatal("the secret is stored in plaintext")
	}
	// A row moved to another name does not open (the name is bound in).
	if _, err := s.db.Exec(`UPDATE radius_clients SET name = 'other'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RadiusClients(ctx); err == nil {
		t.Fatal("a secret sealed for vpn1 opened as other's")
	}
	if err := s.RemoveRadiusClient(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRadiusClient(ctx, "other"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}
