package model

import (
	"strings"
	"time"

	"github.com/camotp/camotp/device"
)

// MaxPageSize bounds the rows of one console page.
const MaxPageSize = 200

// DefaultPageSize is the rows of a console page when none is asked for.
const DefaultPageSize = 50

// pageBounds is the page (1-based) and size of a query, clamped.
func pageBounds(page, size int) (int, int) {
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	return max(page, 1), size
}

// CameraSort is a column the camera listing sorts by.
type CameraSort string

// Camera sort columns. Unknown values (nil learnt offset, never seen, …)
// sort last whichever the direction; ties go by serial.
const (
	SortSerial     CameraSort = "serial"
	SortModel      CameraSort = "model"
	SortState      CameraSort = "state"
	SortOnline     CameraSort = "online"
	SortLastSeen   CameraSort = "last-seen"
	SortAssigned   CameraSort = "assigned"
	SortSeed       CameraSort = "seed"        // seed version
	SortSeedAge    CameraSort = "seed-age"    // when the active seed was proven
	SortOffset     CameraSort = "offset"      // learnt clock offset
	SortLastSignIn CameraSort = "last-signin" // when a code was last accepted
)

// CameraSorts are the valid sort columns.
var CameraSorts = []CameraSort{SortSerial, SortModel, SortState, SortOnline, SortLastSeen, SortAssigned,
	SortSeed, SortSeedAge, SortOffset, SortLastSignIn}

// Tri is a filter on a yes/no column: any, yes or no.
type Tri int8

// Tri values.
const (
	Any Tri = iota
	Yes
	No
)

// CameraQuery is one page of the camera listing: filters, search, sort.
type CameraQuery struct {
	// State keeps cameras in that state ("" any).
	State CameraState
	// Model keeps cameras of that model ("" any).
	Model device.Model
	// Online and Assigned keep cameras connected now / assigned to an
	// officer (Yes), or not (No).
	Online, Assigned Tri
	// Lost keeps cameras reported lost (Yes), or not (No).
	Lost Tri
	// Search keeps cameras whose serial or assigned officer contains it,
	// ASCII letters in any case.
	Search string
	Sort   CameraSort
	Desc   bool
	// Page is 1-based; Size is the rows per page (DefaultPageSize when 0,
	// at most MaxPageSize).
	Page, Size int
}

// Bounds returns the query's page and page size, clamped.
func (q CameraQuery) Bounds() (page, size int) { return pageBounds(q.Page, q.Size) }

// SearchKey is the search as backends compare it: ASCII letters lowered
// (both backends lower only ASCII, so their answers agree).
func (q CameraQuery) SearchKey() string { return lowerASCII(strings.TrimSpace(q.Search)) }

// SortKey is the query's sort column, SortSerial when unknown.
func (q CameraQuery) SortKey() CameraSort {
	for _, s := range CameraSorts {
		if q.Sort == s {
			return s
		}
	}
	return SortSerial
}

// lowerASCII lowers the ASCII letters of s and nothing else.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// CameraRow is a camera as the console lists it: the registry's record
// with what the replay record and the seed's history tell.
type CameraRow struct {
	Camera
	// SeedAt is when the camera proved its active seed (nil: it has none).
	SeedAt *time.Time `json:"seedAt,omitempty"`
	// Offset is the clock offset in steps learnt from the active seed's
	// accepted codes (nil: none accepted yet).
	Offset *int64 `json:"offset,omitempty"`
	// LastSignIn is when a code read off the camera was last accepted
	// (nil: never).
	LastSignIn *time.Time `json:"lastSignIn,omitempty"`
}

// CameraPage is one page of the camera listing and the number of
// cameras matching its filters.
type CameraPage struct {
	Cameras []CameraRow
	Total   int
}

// Assignment gives camera Serial to user Username.
type Assignment struct {
	Serial, Username string
}

// AssignmentError is the row of an all-or-nothing assignment that could
// not be applied (nothing was).
type AssignmentError struct {
	// Index is the row's position in the assignments given.
	Index int
	Err   error
}

// Error is the row's error.
func (e *AssignmentError) Error() string { return e.Err.Error() }

// Unwrap returns the row's error.
func (e *AssignmentError) Unwrap() error { return e.Err }

// UserQuery is one page of the user listing.
type UserQuery struct {
	// Search keeps users whose username or email contains it, ASCII
	// letters in any case.
	Search string
	// Role keeps users of that role ("" any).
	Role Role
	// WithoutCamera keeps users with no camera assigned.
	WithoutCamera bool
	// Names, when not nil, keeps only the users named.
	Names []string
	// Page is 1-based; Size is the rows per page.
	Page, Size int
}

// Bounds returns the query's page and page size, clamped.
func (q UserQuery) Bounds() (page, size int) { return pageBounds(q.Page, q.Size) }

// SearchKey is the search as backends compare it (see CameraQuery.SearchKey).
func (q UserQuery) SearchKey() string { return lowerASCII(strings.TrimSpace(q.Search)) }

// UserRow is a user as the console lists them.
type UserRow struct {
	User
	// LastSignIn is the user's last successful sign-in as the audit log
	// has it (nil: none).
	LastSignIn *time.Time `json:"lastSignIn,omitempty"`
}

// UserPage is one page of the user listing and the number of users
// matching its filters.
type UserPage struct {
	Users []UserRow
	Total int
}

// Audit actions and results the console's "last sign-in" reads.
const (
	AuditSignIn = "login.mfa"
)

// SignInResults are the results of an AuditSignIn row that let the user
// in (a passed second factor, or none required).
var SignInResults = []string{"ok", "not required"}

// AuditFilter selects audit rows. Empty fields select everything. Actor,
// Subject, Action, Result and Source match exactly, or, ending in "*",
// every value starting with what comes before it.
type AuditFilter struct {
	// From (inclusive) and To (exclusive) bound the rows' times.
	From, To time.Time
	Actor    string
	Subject  string
	Action   string
	Result   string
	Source   string
}

// AuditQuery is one page of the audit log, newest first: the Limit rows
// older than Before (an ID; 0: the newest), or, with After, the Limit rows
// just newer than After.
type AuditQuery struct {
	AuditFilter
	Before, After int64
	Limit         int
}

// TextMatch is how a backend matches one filter field: Value exactly, or
// every value starting with it when Prefix.
type TextMatch struct {
	Value  string
	Prefix bool
}

// Match reads a filter field ("" matches everything: Value "" and Prefix).
func Match(field string) TextMatch {
	if v, ok := strings.CutSuffix(field, "*"); ok || field == "" {
		return TextMatch{Value: v, Prefix: true}
	}
	return TextMatch{Value: field}
}

// KeyRange is the throttle counters whose keys k are From ≤ k < To, byte
// by byte (To "": no upper bound).
type KeyRange struct{ From, To string }

// ExactKey is the range of the one key k.
func ExactKey(k string) KeyRange { return KeyRange{From: k, To: k + "\x00"} }

// KeyPrefix is the range of every key starting with p (p not empty).
func KeyPrefix(p string) KeyRange {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return KeyRange{From: p, To: string(b[:i+1])}
		}
	}
	return KeyRange{From: p} // all 0xff: every key from p on
}

// KeyedThrottle is a counter and its key.
type KeyedThrottle struct {
	Key string
	Throttle
}
