package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// The fleet console's reads, the same answers as sqlite's row for row:
// text is compared and sorted byte by byte (COLLATE "C", whatever the
// database's locale), lower() lowers ASCII letters only (as SQLite's), and
// NULLs sort last in both directions explicitly.

// cameraRowCols are a model.CameraRow (see sqlite's).
const cameraRowCols = `c.serial, c.model, c.public_key, c.state, c.version, COALESCE(c.pending_op, ''),
	COALESCE(c.pending_version, 0), COALESCE(c.assigned_user, ''), c.last_seen, c.created_at, c.online,
	c.seed_at, ` + offsetExpr + `, NULLIF(o.used_at, 0), c.lost_at, c.lost_by, c.lost_reason, c.lost_version`

// offsetExpr is the learnt offset of the camera's active seed, NULL when
// none was learnt.
const offsetExpr = `CASE WHEN o.seed_version = c.version AND o.last_step >= 0 THEN o.drift END`

const cameraRowFrom = ` FROM cameras c LEFT JOIN otp_state o ON o.subject = '` + model.CameraSubjectPrefix + `' || c.serial`

// cameraWhere filters the listing: $1 state, $2 model, $3 online and $4
// assigned (model.Tri), $5 the search key, $6 lost (model.Tri).
const cameraWhere = ` WHERE ($1::text = '' OR c.state = $1) AND ($2::text = '' OR c.model = $2)
	AND ($3::int = 0 OR c.online = ($3 = 1)) AND ($4::int = 0 OR (c.assigned_user IS NOT NULL) = ($4 = 1))
	AND ($6::int = 0 OR (c.lost_at IS NOT NULL) = ($6 = 1))
	AND ($5::text = '' OR strpos(lower(c.serial COLLATE "C"), $5) > 0
		OR strpos(lower(COALESCE(c.assigned_user, '') COLLATE "C"), $5) > 0)`

// cameraOrder is the ORDER BY of each sort column (see sqlite's).
var cameraOrder = map[model.CameraSort]string{
	model.SortSerial: `c.serial COLLATE "C" %[1]s`,
	model.SortModel:  `c.model COLLATE "C" %[1]s, c.serial COLLATE "C"`,
	model.SortState: `CASE c.state WHEN 'registered' THEN 0 WHEN 'pending' THEN 1 WHEN 'provisioned' THEN 2
		WHEN 'wiping' THEN 3 WHEN 'wiped' THEN 4 ELSE 5 END %[1]s, c.serial COLLATE "C"`,
	model.SortOnline:     `c.online %[1]s, c.serial COLLATE "C"`,
	model.SortLastSeen:   `(c.last_seen IS NULL), c.last_seen %[1]s, c.serial COLLATE "C"`,
	model.SortAssigned:   `(c.assigned_user IS NULL), c.assigned_user COLLATE "C" %[1]s, c.serial COLLATE "C"`,
	model.SortSeed:       `c.version %[1]s, c.serial COLLATE "C"`,
	model.SortSeedAge:    `(c.seed_at IS NULL), c.seed_at %[2]s, c.serial COLLATE "C"`,
	model.SortOffset:     `(` + offsetExpr + ` IS NULL), ` + offsetExpr + ` %[1]s, c.serial COLLATE "C"`,
	model.SortLastSignIn: `(o.used_at IS NULL OR o.used_at = 0), o.used_at %[1]s, c.serial COLLATE "C"`,
}

// orderBy is the ORDER BY clause of sort in the direction asked.
func orderBy(sort model.CameraSort, desc bool) string {
	dir, rev := "ASC", "DESC"
	if desc {
		dir, rev = rev, dir
	}
	return ` ORDER BY ` + fmt.Sprintf(cameraOrder[sort], dir, rev)
}

func cameraArgs(q model.CameraQuery) []any {
	return []any{string(q.State), string(q.Model), int(q.Online), int(q.Assigned), q.SearchKey(), int(q.Lost)}
}

// scanCameraRow scans cameraRowCols.
func scanCameraRow(row pgx.Row) (model.CameraRow, error) {
	var r model.CameraRow
	var lastSeen, seedAt, offset, usedAt *int64
	var created int64
	var op, state, camModel string
	var lost lostScan
	c := &r.Camera
	if err := row.Scan(append([]any{&c.Serial, &camModel, &c.PublicKey, &state, &c.Version, &op, &c.PendingVersion,
		&c.AssignedUser, &lastSeen, &created, &c.Online, &seedAt, &offset, &usedAt}, lost.dest()...)...); err != nil {
		return model.CameraRow{}, err
	}
	c.Lost = lost.lost()
	c.Model, c.State, c.PendingOp = deviceModel(camModel), model.CameraState(state), model.Op(op)
	c.CreatedAt = utc(created)
	c.LastSeen, r.SeedAt, r.LastSignIn, r.Offset = ptrTime(lastSeen), ptrTime(seedAt), ptrTime(usedAt), offset
	return r, nil
}

// CameraPage is one page of the console's camera listing and the number
// of cameras matching its filters.
func (s *Store) CameraPage(ctx context.Context, q model.CameraQuery) (model.CameraPage, error) {
	page, size := q.Bounds()
	a := cameraArgs(q)
	var out model.CameraPage
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras c`+cameraWhere, a, &out.Total); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return model.CameraPage{}, fmt.Errorf("count cameras: %w", err)
	}
	out.Cameras = make([]model.CameraRow, 0, size)
	err := s.query(ctx, `SELECT `+cameraRowCols+cameraRowFrom+cameraWhere+orderBy(q.SortKey(), q.Desc)+` LIMIT $7 OFFSET $8`,
		append(a, size, (page-1)*size), func(r pgx.Rows) error {
			row, err := scanCameraRow(r)
			out.Cameras = append(out.Cameras, row)
			return err
		})
	if err != nil {
		return model.CameraPage{}, fmt.Errorf("list cameras: %w", err)
	}
	return out, nil
}

// CameraRow is one camera as CameraPage lists it; ErrNotFound when unknown.
func (s *Store) CameraRow(ctx context.Context, serial string) (model.CameraRow, error) {
	var out model.CameraRow
	err := s.row(ctx, `SELECT `+cameraRowCols+cameraRowFrom+` WHERE c.serial = $1`, args(serial), func(r pgx.Row) error {
		var err error
		out, err = scanCameraRow(r)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return model.CameraRow{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.CameraRow{}, fmt.Errorf("read camera %s: %w", serial, err)
	}
	return out, nil
}

// AssignAll makes every assignment with Assign's rules in one
// transaction, or none: the first that cannot be made is an
// *model.AssignmentError and nothing changed.
func (s *Store) AssignAll(ctx context.Context, as []model.Assignment) error {
	if len(as) == 0 {
		return nil
	}
	for i, a := range as {
		if !storable([]any{a.Serial, a.Username}) {
			return &model.AssignmentError{Index: i, Err: fmt.Errorf("camera %s: %w", a.Serial, storage.ErrNotFound)}
		}
	}
	return s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		for i, a := range as {
			if err := s.assign(ctx, tx, a.Serial, a.Username); err != nil {
				return &model.AssignmentError{Index: i, Err: err}
			}
		}
		return nil
	})
}

// signInWhere selects the audit rows of a user's successful sign-ins.
var signInWhere = `a.action = '` + model.AuditSignIn + `' AND a.result IN ('` + strings.Join(model.SignInResults, `', '`) + `')`

// userWhere filters the user listing: $1 role, $2 the search key, $3
// without a camera, $4 the names (NULL for any).
const userWhere = ` WHERE ($1::text = '' OR u.role = $1)
	AND ($2::text = '' OR strpos(lower(u.username COLLATE "C"), $2) > 0 OR strpos(lower(u.email COLLATE "C"), $2) > 0)
	AND (NOT $3::boolean OR NOT EXISTS (SELECT 1 FROM cameras x WHERE x.assigned_user = u.username))
	AND ($4::text[] IS NULL OR u.username = ANY($4))`

// UserPage is one page of the console's user listing, by username, and
// the number of users matching.
func (s *Store) UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error) {
	page, size := q.Bounds()
	var names []string // NULL: any
	if q.Names != nil {
		names = make([]string, 0, len(q.Names))
		for _, n := range q.Names {
			if storable([]any{n}) { // no row holds another
				names = append(names, n)
			}
		}
	}
	a := []any{string(q.Role), q.SearchKey(), q.WithoutCamera, names}
	var out model.UserPage
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM users u`+userWhere, a, &out.Total); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return model.UserPage{}, fmt.Errorf("count users: %w", err)
	}
	out.Users = make([]model.UserRow, 0, size)
	err := s.query(ctx, `SELECT `+userCols+`, (SELECT a.at FROM audit a WHERE a.subject = u.username AND `+signInWhere+`
			ORDER BY a.at DESC LIMIT 1)`+userFrom+userWhere+` ORDER BY u.username COLLATE "C" LIMIT $5 OFFSET $6`,
		append(a, size, (page-1)*size), func(r pgx.Rows) error {
			var last *int64
			u, err := scanUser(r, &last)
			out.Users = append(out.Users, model.UserRow{User: u, LastSignIn: ptrTime(last)})
			return err
		})
	if err != nil {
		return model.UserPage{}, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// rangesSQL is the condition "key in one of ranges" and its arguments,
// $-numbered from first; keys are BYTEA, compared byte by byte.
func rangesSQL(ranges []model.KeyRange, first int) (string, []any) {
	var b strings.Builder
	a := make([]any, 0, 2*len(ranges))
	for i, r := range ranges {
		if i > 0 {
			b.WriteString(" OR ")
		}
		f, t := first+2*i, first+2*i+1
		fmt.Fprintf(&b, "(key >= $%d AND ($%d = ''::bytea OR key < $%d))", f, t, t)
		a = append(a, []byte(r.From), []byte(r.To))
	}
	return b.String(), a
}

// ThrottlesIn reads the counters whose keys fall in one of ranges, by key.
func (s *Store) ThrottlesIn(ctx context.Context, ranges ...model.KeyRange) ([]model.KeyedThrottle, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	cond, a := rangesSQL(ranges, 1)
	var out []model.KeyedThrottle
	err := s.query(ctx, `SELECT key, attempts, first_at, blocked_until, level FROM throttle WHERE `+cond+` ORDER BY key`, a, func(r pgx.Rows) error {
		var k model.KeyedThrottle
		var key []byte
		var first, blocked int64
		if err := r.Scan(&key, &k.Attempts, &first, &blocked, &k.Level); err != nil {
			return err
		}
		k.Key, k.FirstAt, k.BlockedUntil = string(key), msTime(first), msTime(blocked)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read throttles: %w", err)
	}
	return out, nil
}

// ClearThrottles deletes the counters whose keys fall in one of ranges and
// returns how many.
func (s *Store) ClearThrottles(ctx context.Context, ranges ...model.KeyRange) (int, error) {
	if len(ranges) == 0 {
		return 0, nil
	}
	cond, a := rangesSQL(ranges, 1)
	tag, err := s.exec(ctx, `DELETE FROM throttle WHERE `+cond, a...)
	if err != nil {
		return 0, fmt.Errorf("clear throttles: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// auditWhere is the WHERE of f, with only the filters f sets, and its
// arguments.
func auditWhere(f model.AuditFilter) (string, []any) {
	var conds []string
	var a []any
	add := func(cond string, v any) {
		a = append(a, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(a))))
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("at < ?", f.To.UnixMilli())
	}
	for _, t := range []struct{ col, v string }{
		{"actor", f.Actor}, {"subject", f.Subject}, {"action", f.Action}, {"result", f.Result}, {"source_ip", f.Source},
	} {
		switch m := model.Match(t.v); {
		case m.Prefix && m.Value == "":
		case m.Prefix:
			add("starts_with("+t.col+", ?)", text(m.Value))
		default:
			add(t.col+" = ?", text(m.Value))
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), a
}

// auditPage reads q's page, newest first, into a new slice.
func (s *Store) auditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error) {
	where, a := auditWhere(q.AuditFilter)
	cursor, order := "", " ORDER BY id DESC"
	switch {
	case q.After > 0:
		cursor, order = "id > ", " ORDER BY id ASC"
		a = append(a, q.After)
	case q.Before > 0:
		cursor = "id < "
		a = append(a, q.Before)
	}
	if cursor != "" {
		cursor += fmt.Sprintf("$%d", len(a))
		if where == "" {
			where = " WHERE " + cursor
		} else {
			where += " AND " + cursor
		}
	}
	a = append(a, q.Limit)
	out := make([]model.AuditEntry, 0, q.Limit)
	err := s.query(ctx, `SELECT `+auditCols+` FROM audit`+where+order+fmt.Sprintf(" LIMIT $%d", len(a)), a, func(r pgx.Rows) error {
		e, err := scanAudit(r)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	if q.After > 0 { // read oldest first: newest first as every page
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

// AuditPage is one page of the rows q's filter selects, newest first.
func (s *Store) AuditPage(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error) {
	return storage.PageAudit(ctx, q, s.auditPage)
}

// AuditEach calls fn for every row f selects, newest first, a batch at a
// time (storage.EachAudit).
func (s *Store) AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error {
	return storage.EachAudit(ctx, f, s.auditPage, fn)
}

// deviceModel is a model column's value.
func deviceModel(s string) device.Model { return device.Model(s) }

// ptrTime is the UTC time of ms, nil for NULL.
func ptrTime(ms *int64) *time.Time {
	if ms == nil {
		return nil
	}
	t := utc(*ms)
	return &t
}
