//go:build !unix

package fdlimit

import "errors"

// Current returns the soft and hard open-file limits (unsupported here).
func Current() (soft, hard uint64, err error) { return 0, 0, errors.ErrUnsupported }

// Raise sets the soft open-file limit to the hard limit (unsupported here).
func Raise() (soft, hard uint64, err error) { return 0, 0, errors.ErrUnsupported }
