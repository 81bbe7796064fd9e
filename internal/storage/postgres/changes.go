package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// changesChannel is the LISTEN/NOTIFY channel announcements travel on; the
// payload is the topic.
const changesChannel = "camotp_changes"

// Announce tells every node sharing the database, this one included, that
// topic changed: this node's watchers at once, the others by NOTIFY, which
// each node's listener receives within moments.
func (s *Store) Announce(ctx context.Context, topic string) error {
	s.changes.Fire(topic)
	if _, err := s.exec(ctx, `SELECT pg_notify($1, $2)`, changesChannel, topic); err != nil {
		return fmt.Errorf("announce %s: %w", topic, err)
	}
	return nil
}

// Watch calls fn whenever topic is announced by any node, and whenever
// this node may have missed an announcement (its listening connection was
// lost and is back). The first Watch starts the listener: a connection of
// its own, LISTENing until Close.
func (s *Store) Watch(topic string, fn func()) (stop func()) {
	stop = s.changes.Watch(topic, fn)
	s.listenOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopListen = cancel
		s.listening.Add(1)
		go func() {
			defer s.listening.Done()
			s.listen(ctx)
		}()
	})
	return stop
}

// listen receives announcements until ctx ends, reconnecting with backoff
// when its connection is lost. Every time it starts listening, every
// watcher is called: changes may have passed while it was not — after a
// loss, and before the first LISTEN too (a node that read the policy
// while its listener was connecting would otherwise keep it for good).
func (s *Store) listen(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenConn(ctx, func() {
			wait = 100 * time.Millisecond
			s.changes.Fire("")
		})
		if ctx.Err() != nil {
			return
		}
		s.log("listen for changes", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// listenConn connects, LISTENs, calls ready and delivers notifications
// until the connection fails.
func (s *Store) listenConn(ctx context.Context, ready func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.connConfig)
	if err != nil {
		return classify(err)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		return classify(err)
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return classify(err)
		}
		s.changes.Fire(n.Payload)
	}
}
