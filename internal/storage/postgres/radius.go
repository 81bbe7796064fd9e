package postgres

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// AddRadiusClient stores a client with its shared secret sealed with the
// master key. ErrExists when the name or the CIDR is taken.
func (s *Store) AddRadiusClient(ctx context.Context, c model.RadiusClient) error {
	sealed, err := s.seal.SealRadiusSecret(c.Name, c.Secret)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO radius_clients (name, cidr, secret, created_at) VALUES ($1,$2,$3,$4)`,
		c.Name, c.CIDR.Masked().String(), sealed, s.now().UnixMilli())
	if isUnique(err) {
		return fmt.Errorf("radius client %s or %s: %w", c.Name, c.CIDR.Masked(), storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add radius client %s: %w", c.Name, err)
	}
	return nil
}

// RadiusClients lists every client by name, secrets opened.
func (s *Store) RadiusClients(ctx context.Context) ([]model.RadiusClient, error) {
	var out []model.RadiusClient
	err := s.query(ctx, `SELECT name, cidr, secret, created_at FROM radius_clients ORDER BY name`, nil, func(r pgx.Rows) error {
		var c model.RadiusClient
		var cidr string
		var sealed []byte
		var created int64
		if err := r.Scan(&c.Name, &cidr, &sealed, &created); err != nil {
			return err
		}
		var err error
		if c.CIDR, err = netip.ParsePrefix(cidr); err != nil {
			return fmt.Errorf("radius client %s: cidr %q: %w", c.Name, cidr, err)
		}
		if c.Secret, err = s.seal.OpenRadiusSecret(c.Name, sealed); err != nil {
			return err
		}
		c.CreatedAt = utc(created)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list radius clients: %w", err)
	}
	return out, nil
}

// RemoveRadiusClient deletes a client; ErrNotFound when there is none.
func (s *Store) RemoveRadiusClient(ctx context.Context, name string) error {
	tag, err := s.exec(ctx, `DELETE FROM radius_clients WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("remove radius client %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("radius client %s: %w", name, storage.ErrNotFound)
	}
	return nil
}
