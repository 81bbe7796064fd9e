//go:build unix

// Package fdlimit reads and raises the process's open-file limit
// (RLIMIT_NOFILE), which bounds how many cameras, HTTP clients and
// database files the server can hold open at once.
package fdlimit

import (
	"fmt"
	"syscall"
)

// Current returns the soft and hard open-file limits.
func Current() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

// Raise sets the soft open-file limit to the hard limit and returns both.
// (Go's os package already does so at start-up since Go 1.19; calling it
// again makes the limit explicit and is harmless.)
func Raise() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(lim.Cur), uint64(lim.Max), fmt.Errorf("setrlimit nofile %d: %w", want.Cur, err)
		}
		lim = want
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}
