// Package together fires work from goroutines released at one instant:
// what tests use to hit a limit in parallel (a rule checked only
// sequentially is not checked) and to flood a listener.
package together

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Run calls fn(i) for every i in [0, n), each in its own goroutine, all
// released together, and returns when every call has returned.
func Run(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// Flood opens n TCP connections to addr at once, each writing prefix (nil:
// nothing) and then staying idle, and returns them; they are closed at
// cleanup. A connection the server resets at once (over a cap) is nil in
// the result; any other dial or write error fails tb.
func Flood(tb testing.TB, addr string, n int, prefix []byte) []net.Conn {
	tb.Helper()
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	Run(n, func(i int) {
		c, err := net.DialTimeout("tcp", addr, 15*time.Second)
		if err == nil && prefix != nil {
			_, err = c.Write(prefix)
		}
		conns[i], errs[i] = c, err
	})
	tb.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			tb.Fatalf("flood %s: %v", addr, err)
		}
	}
	return conns
}
