package postgres

import (
	"context"
	"fmt"
	"time"
)

// SetPresence records that the camera connected (online) or left the
// broker at at. An event older than the one recorded is ignored, so events
// that reach nodes out of order settle on the newest. Unknown serials are
// ignored.
func (s *Store) SetPresence(ctx context.Context, serial string, online bool, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE cameras SET online = $1, presence_at = $2 WHERE serial = $3 AND presence_at <= $2`,
		online, at.UnixMilli(), serial); err != nil {
		return fmt.Errorf("presence of %s: %w", serial, err)
	}
	return nil
}

// ClearPresence marks every camera offline as of at (a broker that starts
// has no connections); cameras with a newer event keep theirs.
func (s *Store) ClearPresence(ctx context.Context, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE cameras SET online = false, presence_at = $1 WHERE online AND presence_at <= $1`,
		at.UnixMilli()); err != nil {
		return fmt.Errorf("clear presence: %w", err)
	}
	return nil
}

// OnlineCount is the number of cameras online.
func (s *Store) OnlineCount(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras WHERE online`, nil, &n); err != nil {
		return 0, fmt.Errorf("count online cameras: %w", err)
	}
	return n, nil
}
