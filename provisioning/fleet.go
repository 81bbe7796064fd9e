package provisioning

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// FleetStore is what the fleet's operations read and change.
type FleetStore interface {
	CameraPage(ctx context.Context, q model.CameraQuery) (model.CameraPage, error)
	CameraRow(ctx context.Context, serial string) (model.CameraRow, error)
	CameraStates(ctx context.Context) (map[string]int, error)
	Camera(ctx context.Context, serial string) (model.Camera, error)
	User(ctx context.Context, username string) (model.User, string, error)
	UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error)
	Assign(ctx context.Context, serial, username string) error
	Unassign(ctx context.Context, serial string) error
	AssignAll(ctx context.Context, as []model.Assignment) error
	AuditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error)
	Audit(ctx context.Context, e model.AuditEntry) error
}

// Starter starts provisioning operations (the Service).
type Starter interface {
	Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error)
	LostReporter
}

// LostReporter reports cameras lost and found (the Service).
type LostReporter interface {
	ReportLost(ctx context.Context, serial, reason, actor, ip string) (model.LostOutcome, error)
	Found(ctx context.Context, serial, actor, ip string) (model.Camera, error)
}

// Fleet runs the fleet's operations for every front door — the admin JSON
// API and the console's pages — so that each is checked, done and audited
// the same way whoever asks: provisioning operations through the Service,
// assignments here.
type Fleet struct {
	st  FleetStore
	ops Starter
}

// NewFleet returns the fleet's operations over st, starting provisioning
// operations with ops.
func NewFleet(st FleetStore, ops Starter) *Fleet { return &Fleet{st: st, ops: ops} }

// Cameras is one page of the camera listing.
func (f *Fleet) Cameras(ctx context.Context, q model.CameraQuery) (model.CameraPage, error) {
	return f.st.CameraPage(ctx, q)
}

// Camera is one camera as the listing shows it.
func (f *Fleet) Camera(ctx context.Context, serial string) (model.CameraRow, error) {
	return f.st.CameraRow(ctx, serial)
}

// States counts the cameras by state (see storage.Cameras.CameraStates).
func (f *Fleet) States(ctx context.Context) (map[string]int, error) { return f.st.CameraStates(ctx) }

// History is the newest limit rows of the camera's audit log.
func (f *Fleet) History(ctx context.Context, serial string, limit int) ([]model.AuditEntry, error) {
	return f.st.AuditPage(ctx, model.AuditQuery{AuditFilter: model.AuditFilter{Subject: serial}, Limit: limit})
}

// Officers lists up to limit officers with no camera whose name or email
// contains search: those a camera can be given to.
func (f *Fleet) Officers(ctx context.Context, search string, limit int) (model.UserPage, error) {
	return f.st.UserPage(ctx, model.UserQuery{Search: search, Role: model.RoleOfficer, WithoutCamera: true, Size: limit})
}

// Start begins op on the camera (the Service's Start: audited there).
func (f *Fleet) Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error) {
	return f.ops.Start(ctx, serial, op, actor, ip)
}

func (f *Fleet) audit(ctx context.Context, e model.AuditEntry) {
	f.st.Audit(context.WithoutCancel(ctx), e) // a lost row is logged and counted by the store's hook
}

// Assign gives the camera to user; actor and ip go to the audit log.
func (f *Fleet) Assign(ctx context.Context, serial, user, actor, ip string) error {
	err := f.st.Assign(ctx, serial, user)
	f.audit(ctx, model.AuditEntry{Actor: actor, Action: "camera.assign", Subject: serial, Result: model.Result(err), SourceIP: ip, Detail: "user " + user})
	return err
}

// Unassign takes the camera from its user; actor and ip go to the audit
// log.
func (f *Fleet) Unassign(ctx context.Context, serial, actor, ip string) error {
	detail := ""
	if c, err := f.st.Camera(ctx, serial); err == nil && c.AssignedUser != "" {
		detail = "user " + c.AssignedUser
	}
	err := f.st.Unassign(ctx, serial)
	f.audit(ctx, model.AuditEntry{Actor: actor, Action: "camera.unassign", Subject: serial, Result: model.Result(err), SourceIP: ip, Detail: detail})
	return err
}

// Limits of a bulk assignment file.
const (
	// MaxBulkBytes bounds the file.
	MaxBulkBytes = 512 << 10
	// MaxBulkRows bounds its rows (a large agency's whole fleet).
	MaxBulkRows = 10_000
)

// Errors of a bulk assignment file as a whole (rows have their own).
var (
	ErrBulkTooLarge   = fmt.Errorf("the file is larger than %d KiB: split it", MaxBulkBytes>>10)
	ErrBulkTooMany    = fmt.Errorf("the file has more than %d rows: split it", MaxBulkRows)
	ErrBulkEmpty      = errors.New("the file has no rows: one line per camera, serial,username")
	ErrBulkHasErrors  = errors.New("some rows cannot be applied: nothing was assigned; fix them and upload the file again")
	ErrBulkNotChecked = errors.New("the rows were not checked")
)

// BulkStatus is what becomes, or became, of a row of a bulk assignment.
type BulkStatus string

// Row statuses: before applying (Assign, Unchanged, Invalid), after
// (Assigned, Unchanged).
const (
	BulkAssign    BulkStatus = "assign"
	BulkUnchanged BulkStatus = "unchanged"
	BulkInvalid   BulkStatus = "invalid"
	BulkAssigned  BulkStatus = "assigned"
)

// BulkRow is one row of a bulk assignment file (serial,username).
type BulkRow struct {
	// Line is the row's line in the file (1-based).
	Line             int
	Serial, Username string
	Status           BulkStatus
	// Problem says why an Invalid row cannot be applied; for an
	// Unchanged one, that it is so already.
	Problem string
}

// ParseBulk reads a bulk assignment file: CSV (RFC 4180) with one row
// per camera, serial,username, and an optional header row naming those
// columns. It reads at most MaxBulkBytes (ErrBulkTooLarge past it) and
// MaxBulkRows rows (ErrBulkTooMany). A malformed file is an error naming
// the line; a row with the wrong number of fields is a row with a
// Problem (CheckAssignments reports it with the others).
func ParseBulk(r io.Reader) ([]BulkRow, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBulkBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the file: %w", err)
	}
	if len(data) > MaxBulkBytes {
		return nil, ErrBulkTooLarge
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), "\uFEFF"))) // spreadsheets write a BOM
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var rows []BulkRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %w (one row per camera: serial,username)", pe.StartLine, pe.Err)
			}
			return nil, fmt.Errorf("read the file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rows) == 0 && len(rec) == 2 && strings.EqualFold(strings.TrimSpace(rec[0]), "serial") &&
			strings.EqualFold(strings.TrimSpace(rec[1]), "username") {
			continue // the header
		}
		if len(rows) == MaxBulkRows {
			return nil, ErrBulkTooMany
		}
		row := BulkRow{Line: line}
		if len(rec) != 2 {
			row.Status, row.Problem = BulkInvalid, fmt.Sprintf("%d fields: want serial,username", len(rec))
			if len(rec) > 0 {
				row.Serial = strings.TrimSpace(rec[0])
			}
		} else {
			row.Serial, row.Username = strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, ErrBulkEmpty
	}
	return rows, nil
}

// CheckAssignments checks every row against the registry as it stands,
// with Assign's rules (one camera per officer, one officer per camera; a
// camera assigned to someone else must be unassigned first) and against
// the other rows (a camera or an officer on two rows), and returns the
// rows with their status: BulkAssign, BulkUnchanged (assigned so already)
// or BulkInvalid with the problem. With officersOnly (anyone but an
// administrator applies the file) a row giving a camera to a staff account
// (admin, fleet, security) is invalid. Pass the rows as ParseBulk or
// DecodeRows made them (a row ParseBulk found malformed stays so).
func (f *Fleet) CheckAssignments(ctx context.Context, rows []BulkRow, officersOnly bool) ([]BulkRow, error) {
	out := make([]BulkRow, len(rows))
	copy(out, rows)
	serialAt, userAt := map[string]int{}, map[string]int{}
	for i := range out {
		r := &out[i]
		if r.Status == BulkInvalid {
			continue // malformed: ParseBulk said why
		}
		r.Status, r.Problem = BulkAssign, ""
		if err := device.ValidateSerial(r.Serial); err != nil {
			r.Status, r.Problem = BulkInvalid, err.Error()
			continue
		}
		if r.Username == "" {
			r.Status, r.Problem = BulkInvalid, "no username"
			continue
		}
		if j, ok := serialAt[r.Serial]; ok {
			r.Status, r.Problem = BulkInvalid, fmt.Sprintf("camera %s is also on line %d", r.Serial, out[j].Line)
			continue
		}
		if j, ok := userAt[r.Username]; ok {
			r.Status, r.Problem = BulkInvalid, fmt.Sprintf("%s is also on line %d: one camera per officer", r.Username, out[j].Line)
			continue
		}
		serialAt[r.Serial], userAt[r.Username] = i, i
		cam, err := f.st.Camera(ctx, r.Serial)
		if errors.Is(err, storage.ErrNotFound) {
			r.Status, r.Problem = BulkInvalid, "no camera "+r.Serial
			continue
		}
		if err != nil {
			return nil, err
		}
		u, _, err := f.st.User(ctx, r.Username)
		if errors.Is(err, storage.ErrNotFound) {
			r.Status, r.Problem = BulkInvalid, "no user "+r.Username
			continue
		}
		if err != nil {
			return nil, err
		}
		role, err := model.ParseRole(u.Role)
		if err != nil {
			return nil, err
		}
		switch {
		case cam.Lost != nil:
			r.Status, r.Problem = BulkInvalid, model.LostAssignError(r.Serial).Error()
		case officersOnly && role.Staff():
			r.Status, r.Problem = BulkInvalid, fmt.Sprintf("%s is not an officer (%s): only an administrator gives a camera to a staff account", r.Username, role)
		case cam.AssignedUser == u.Username:
			r.Status, r.Problem = BulkUnchanged, "assigned so already"
		case cam.AssignedUser != "":
			r.Status, r.Problem = BulkInvalid, fmt.Sprintf("camera %s is assigned to %s: unassign it first", r.Serial, cam.AssignedUser)
		case u.Camera != "":
			r.Status, r.Problem = BulkInvalid, fmt.Sprintf("%s already has camera %s: unassign it first", r.Username, u.Camera)
		}
	}
	return out, nil
}

// ApplyAssignments checks the rows again (CheckAssignments) and, when none
// is invalid, makes every assignment in one transaction, or none: a row
// that became impossible meanwhile makes it fail whole. Each assignment
// is audited as the API's are (camera.assign), and the whole once
// (camera.bulk-assign). It returns the rows with their outcome
// (BulkAssigned, BulkUnchanged); when nothing was applied, the rows with
// their problems and ErrBulkHasErrors.
func (f *Fleet) ApplyAssignments(ctx context.Context, rows []BulkRow, officersOnly bool, actor, ip string) ([]BulkRow, error) {
	checked, err := f.CheckAssignments(ctx, rows, officersOnly)
	if err != nil {
		return nil, err
	}
	var as []model.Assignment
	var idx []int
	for i, r := range checked {
		switch r.Status {
		case BulkInvalid:
			return checked, ErrBulkHasErrors
		case BulkAssign:
			as = append(as, model.Assignment{Serial: r.Serial, Username: r.Username})
			idx = append(idx, i)
		}
	}
	err = f.st.AssignAll(ctx, as)
	f.audit(ctx, model.AuditEntry{Actor: actor, Action: "camera.bulk-assign", Subject: "fleet", Result: model.Result(err), SourceIP: ip,
		Detail: fmt.Sprintf("%d rows, %d assignments", len(rows), len(as))})
	var ae *model.AssignmentError
	if errors.As(err, &ae) {
		r := &checked[idx[ae.Index]]
		r.Status, r.Problem = BulkInvalid, ae.Err.Error()
		return checked, ErrBulkHasErrors
	}
	if err != nil {
		return nil, err
	}
	for _, i := range idx {
		r := &checked[i]
		r.Status = BulkAssigned
		f.audit(ctx, model.AuditEntry{Actor: actor, Action: "camera.assign", Subject: r.Serial, Result: "ok", SourceIP: ip,
			Detail: "user " + r.Username + " (bulk)"})
	}
	return checked, nil
}

// EncodeRows writes rows as DecodeRows reads them (line,serial,username
// per row), for a preview to carry the rows it checked to the apply: the
// apply checks them again, the lines only keep the file's numbering.
func EncodeRows(rows []BulkRow) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	for _, r := range rows {
		w.Write([]string{strconv.Itoa(r.Line), r.Serial, r.Username})
	}
	w.Flush()
	return b.String()
}

// DecodeRows reads what EncodeRows wrote, within ParseBulk's limits.
func DecodeRows(s string) ([]BulkRow, error) {
	if len(s) > 2*MaxBulkBytes { // the line numbers take room too
		return nil, ErrBulkTooLarge
	}
	cr := csv.NewReader(strings.NewReader(s))
	cr.FieldsPerRecord = 3
	var rows []BulkRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the rows to apply are damaged: %w: upload the file again", err)
		}
		if len(rows) == MaxBulkRows {
			return nil, ErrBulkTooMany
		}
		line, err := strconv.Atoi(rec[0])
		if err != nil {
			return nil, fmt.Errorf("the rows to apply are damaged: line %q: upload the file again", rec[0])
		}
		rows = append(rows, BulkRow{Line: line, Serial: rec[1], Username: rec[2]})
	}
	if len(rows) == 0 {
		return nil, ErrBulkEmpty
	}
	return rows, nil
}
