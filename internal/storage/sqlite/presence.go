package sqlite

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
	if _, err := s.exec(ctx, `UPDATE cameras SET online = ?, presence_at = ? WHERE serial = ? AND presence_at <= ?`,
		online, at.UnixMilli(), serial, at.UnixMilli()); err != nil {
		return fmt.Errorf("presence of %s: %w", serial, err)
	}
	return nil
}

// ClearPresence marks every camera offline as of at (a broker that starts
// has no connections); cameras with a newer event keep theirs. Every
// older camera takes at, the offline ones too: a late event from before
// at must not bring one online.
func (s *Store) ClearPresence(ctx context.Context, at time.Time) error {
	if _, err := s.exec(ctx, `UPDATE cameras SET online = 0, presence_at = ? WHERE presence_at <= ?`,
		at.UnixMilli(), at.UnixMilli()); err != nil {
		return fmt.Errorf("clear presence: %w", err)
	}
	return nil
}

// OnlineCount is the number of cameras online.
func (s *Store) OnlineCount(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras WHERE online <> 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count online cameras: %w", err)
	}
	return n, nil
}

// ClaimResends claims up to limit cameras whose pending command nobody
// resent in the last every (as of now) and returns their serials: one
// conditional update, so of several nodes sweeping at once each pending
// command goes to exactly one.
func (s *Store) ClaimResends(ctx context.Context, now time.Time, every time.Duration, limit int) ([]string, error) {
	var out []string
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE cameras SET resent_at = ?1 WHERE serial IN
			(SELECT serial FROM cameras WHERE pending_op IS NOT NULL AND resent_at <= ?2 ORDER BY resent_at, serial LIMIT ?3)
			RETURNING serial`, now.UnixMilli(), now.Add(-every).UnixMilli(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sn string
			if err := rows.Scan(&sn); err != nil {
				return err
			}
			out = append(out, sn)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim resends: %w", err)
	}
	return out, nil
}
