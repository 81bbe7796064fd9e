package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// The fleet console's reads. Each page is one query and one count; the
// statements of the camera and user listings are fixed texts (filters are
// parameters, the ORDER BY one of a known set), so they are prepared once
// like every other read. The audit log's WHERE holds only the filters
// given, so that the subject index serves the camera and user histories:
// those statements are prepared per call.

// cameraRowCols are a model.CameraRow: the camera c (cameraCols), when its
// active seed was proven, the learnt offset of the active seed's codes
// (the replay record o of the same seed version, once a code was
// accepted) and when a code was last accepted.
const cameraRowCols = `c.serial, c.model, c.public_key, c.state, c.version, COALESCE(c.pending_op, ''),
	COALESCE(c.pending_version, 0), COALESCE(c.assigned_user, ''), c.last_seen, c.created_at, c.online,
	c.seed_at, ` + offsetExpr + `, NULLIF(o.used_at, 0), c.lost_at, c.lost_by, c.lost_reason, c.lost_version`

// offsetExpr is the learnt offset of the camera's active seed, NULL when
// none was learnt.
const offsetExpr = `CASE WHEN o.seed_version = c.version AND o.last_step >= 0 THEN o.drift END`

const cameraRowFrom = ` FROM cameras c LEFT JOIN otp_state o ON o.subject = '` + model.CameraSubjectPrefix + `' || c.serial`

// cameraWhere filters the listing: ?1 state, ?2 model, ?3 online and ?4
// assigned (model.Tri), ?5 the search key, ?6 lost (model.Tri).
const cameraWhere = ` WHERE (?1 = '' OR c.state = ?1) AND (?2 = '' OR c.model = ?2)
	AND (?3 = 0 OR c.online = (?3 = 1)) AND (?4 = 0 OR (c.assigned_user IS NOT NULL) = (?4 = 1))
	AND (?6 = 0 OR (c.lost_at IS NOT NULL) = (?6 = 1))
	AND (?5 = '' OR instr(lower(c.serial), ?5) > 0 OR instr(lower(COALESCE(c.assigned_user, '')), ?5) > 0)`

// cameraOrder is the ORDER BY of each sort column, ascending; unknown
// values (NULL) last in either direction, ties by serial.
var cameraOrder = map[model.CameraSort]string{
	model.SortSerial: `c.serial %[1]s`,
	model.SortModel:  `c.model %[1]s, c.serial`,
	model.SortState: `CASE c.state WHEN 'registered' THEN 0 WHEN 'pending' THEN 1 WHEN 'provisioned' THEN 2
		WHEN 'wiping' THEN 3 WHEN 'wiped' THEN 4 ELSE 5 END %[1]s, c.serial`,
	model.SortOnline:     `c.online %[1]s, c.serial`,
	model.SortLastSeen:   `(c.last_seen IS NULL), c.last_seen %[1]s, c.serial`,
	model.SortAssigned:   `(c.assigned_user IS NULL), c.assigned_user %[1]s, c.serial`,
	model.SortSeed:       `c.version %[1]s, c.serial`,
	model.SortSeedAge:    `(c.seed_at IS NULL), c.seed_at %[2]s, c.serial`, // older seed, greater age
	model.SortOffset:     `(` + offsetExpr + ` IS NULL), ` + offsetExpr + ` %[1]s, c.serial`,
	model.SortLastSignIn: `(o.used_at IS NULL OR o.used_at = 0), o.used_at %[1]s, c.serial`,
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
func scanCameraRow(row scanner) (model.CameraRow, error) {
	var r model.CameraRow
	var lastSeen, seedAt, offset, usedAt sql.NullInt64
	var created int64
	var op string
	var lost lostScan
	c := &r.Camera
	if err := row.Scan(append([]any{&c.Serial, &c.Model, &c.PublicKey, &c.State, &c.Version, &op, &c.PendingVersion,
		&c.AssignedUser, &lastSeen, &created, &c.Online, &seedAt, &offset, &usedAt}, lost.dest()...)...); err != nil {
		return model.CameraRow{}, err
	}
	c.PendingOp = model.Op(op)
	c.Lost = lost.lost()
	c.CreatedAt = time.UnixMilli(created).UTC()
	c.LastSeen, r.SeedAt, r.LastSignIn = nullTime(lastSeen), nullTime(seedAt), nullTime(usedAt)
	if offset.Valid {
		o := offset.Int64
		r.Offset = &o
	}
	return r, nil
}

// nullTime is the UTC time of ms, nil for NULL.
func nullTime(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := time.UnixMilli(ms.Int64).UTC()
	return &t
}

// CameraPage is one page of the console's camera listing and the number
// of cameras matching its filters.
func (s *Store) CameraPage(ctx context.Context, q model.CameraQuery) (model.CameraPage, error) {
	page, size := q.Bounds()
	a := cameraArgs(q)
	var out model.CameraPage
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM cameras c`+cameraWhere, a...).Scan(&out.Total); err != nil {
		return model.CameraPage{}, fmt.Errorf("count cameras: %w", err)
	}
	rows, err := s.query(ctx, `SELECT `+cameraRowCols+cameraRowFrom+cameraWhere+orderBy(q.SortKey(), q.Desc)+` LIMIT ?7 OFFSET ?8`,
		append(a, size, (page-1)*size)...)
	if err != nil {
		return model.CameraPage{}, fmt.Errorf("list cameras: %w", err)
	}
	defer rows.Close()
	out.Cameras = make([]model.CameraRow, 0, size)
	for rows.Next() {
		r, err := scanCameraRow(rows)
		if err != nil {
			return model.CameraPage{}, fmt.Errorf("list cameras: %w", err)
		}
		out.Cameras = append(out.Cameras, r)
	}
	if err := rows.Err(); err != nil {
		return model.CameraPage{}, fmt.Errorf("list cameras: %w", err)
	}
	return out, nil
}

// CameraRow is one camera as CameraPage lists it; ErrNotFound when unknown.
func (s *Store) CameraRow(ctx context.Context, serial string) (model.CameraRow, error) {
	r, err := scanCameraRow(s.queryRow(ctx, `SELECT `+cameraRowCols+cameraRowFrom+` WHERE c.serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return model.CameraRow{}, fmt.Errorf("camera %s: %w", serial, storage.ErrNotFound)
	}
	if err != nil {
		return model.CameraRow{}, fmt.Errorf("read camera %s: %w", serial, err)
	}
	return r, nil
}

// AssignAll makes every assignment with Assign's rules in one
// transaction, or none: the first that cannot be made is an
// *model.AssignmentError and nothing changed.
func (s *Store) AssignAll(ctx context.Context, as []model.Assignment) error {
	if len(as) == 0 {
		return nil
	}
	return s.tx(ctx, func(ctx context.Context, tx *wtx) error {
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

// userWhere filters the user listing: ?1 role, ?2 the search key, ?3
// without a camera (1), ?4 the names as a JSON array ("" for any).
const userWhere = ` WHERE (?1 = '' OR u.role = ?1)
	AND (?2 = '' OR instr(lower(u.username), ?2) > 0 OR instr(lower(u.email), ?2) > 0)
	AND (?3 = 0 OR NOT EXISTS (SELECT 1 FROM cameras x WHERE x.assigned_user = u.username))
	AND (?4 = '' OR u.username IN (SELECT value FROM json_each(?4)))`

// UserPage is one page of the console's user listing, by username, and
// the number of users matching.
func (s *Store) UserPage(ctx context.Context, q model.UserQuery) (model.UserPage, error) {
	page, size := q.Bounds()
	names := ""
	if q.Names != nil {
		b, err := json.Marshal(q.Names)
		if err != nil {
			return model.UserPage{}, err
		}
		names = string(b)
	}
	a := []any{string(q.Role), q.SearchKey(), q.WithoutCamera, names}
	var out model.UserPage
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM users u`+userWhere, a...).Scan(&out.Total); err != nil {
		return model.UserPage{}, fmt.Errorf("count users: %w", err)
	}
	// The newest sign-in row of each user walks the subject index back
	// from the newest row of the user.
	rows, err := s.query(ctx, `SELECT `+userCols+`, (SELECT a.at FROM audit a WHERE a.subject = u.username AND `+signInWhere+`
			ORDER BY a.at DESC LIMIT 1)
		FROM users u LEFT JOIN cameras c ON c.assigned_user = u.username`+userWhere+` ORDER BY u.username LIMIT ?5 OFFSET ?6`,
		append(a, size, (page-1)*size)...)
	if err != nil {
		return model.UserPage{}, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out.Users = make([]model.UserRow, 0, size)
	for rows.Next() {
		var last sql.NullInt64
		u, err := scanUser(rows, &last)
		if err != nil {
			return model.UserPage{}, fmt.Errorf("list users: %w", err)
		}
		out.Users = append(out.Users, model.UserRow{User: u, LastSignIn: nullTime(last)})
	}
	if err := rows.Err(); err != nil {
		return model.UserPage{}, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// rangesSQL is the condition "key in one of n ranges" and its arguments,
// ?-numbered from first. n is rounded up to a power of two (the last range
// repeated) so that few statement texts exist.
func rangesSQL(ranges []model.KeyRange, first int) (string, []any) {
	n := 1
	for n < len(ranges) {
		n *= 2
	}
	var b strings.Builder
	args := make([]any, 0, 2*n)
	for i := range n {
		r := ranges[min(i, len(ranges)-1)]
		if i > 0 {
			b.WriteString(" OR ")
		}
		f, t := first+2*i, first+2*i+1
		fmt.Fprintf(&b, "(key >= ?%d AND (?%d = '' OR key < ?%d))", f, t, t)
		args = append(args, r.From, r.To)
	}
	return b.String(), args
}

// ThrottlesIn reads the counters whose keys fall in one of ranges, by key.
func (s *Store) ThrottlesIn(ctx context.Context, ranges ...model.KeyRange) ([]model.KeyedThrottle, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	cond, a := rangesSQL(ranges, 1)
	rows, err := s.query(ctx, `SELECT key, attempts, first_at, blocked_until, level FROM throttle WHERE `+cond+` ORDER BY key`, a...)
	if err != nil {
		return nil, fmt.Errorf("read throttles: %w", err)
	}
	defer rows.Close()
	var out []model.KeyedThrottle
	for rows.Next() {
		var k model.KeyedThrottle
		var first, blocked int64
		if err := rows.Scan(&k.Key, &k.Attempts, &first, &blocked, &k.Level); err != nil {
			return nil, fmt.Errorf("read throttles: %w", err)
		}
		k.FirstAt, k.BlockedUntil = msTime(first), msTime(blocked)
		out = append(out, k)
	}
	return out, rows.Err()
}

// ClearThrottles deletes the counters whose keys fall in one of ranges and
// returns how many.
func (s *Store) ClearThrottles(ctx context.Context, ranges ...model.KeyRange) (int, error) {
	if len(ranges) == 0 {
		return 0, nil
	}
	cond, a := rangesSQL(ranges, 1)
	res, err := s.exec(ctx, `DELETE FROM throttle WHERE `+cond, a...)
	if err != nil {
		return 0, fmt.Errorf("clear throttles: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// auditWhere is the WHERE of f, with only the filters f sets, and its
// arguments.
func auditWhere(f model.AuditFilter) (string, []any) {
	var conds []string
	var a []any
	add := func(cond string, v any) {
		a = append(a, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("?%d", len(a))))
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
			add("substr("+t.col+", 1, length(?)) = ?", m.Value)
		default:
			add(t.col+" = ?", m.Value)
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
		cursor, order = "id > ?", " ORDER BY id ASC"
		a = append(a, q.After)
	case q.Before > 0:
		cursor = "id < ?"
		a = append(a, q.Before)
	}
	if cursor != "" {
		cursor = strings.Replace(cursor, "?", fmt.Sprintf("?%d", len(a)), 1)
		if where == "" {
			where = " WHERE " + cursor
		} else {
			where += " AND " + cursor
		}
	}
	a = append(a, q.Limit)
	// Prepared for this call only: the texts are many, and the subject
	// index must serve a filter on it.
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+auditCols+` FROM audit`+where+order+fmt.Sprintf(" LIMIT ?%d", len(a)), a...)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	out := make([]model.AuditEntry, 0, q.Limit)
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
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
