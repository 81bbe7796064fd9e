package model

import "fmt"

// Role is what a user may do in the fleet console: an administrator
// everything, the fleet role the cameras and their assignments, the
// security role the users, their MFA, the policy and the audit log. An
// officer only signs in.
type Role string

// Roles.
const (
	RoleAdmin    Role = "admin"
	RoleFleet    Role = "fleet"
	RoleSecurity Role = "security"
	RoleOfficer  Role = "officer"
)

// Roles are every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleFleet, RoleSecurity, RoleOfficer}

// legacyUserRole is the role every non-admin user had before the console
// had roles; it means officer.
const legacyUserRole = "user"

// ParseRole reads a role as the admin API and the CLI spell it: "" and the
// old "user" are officers.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case "", legacyUserRole:
		return RoleOfficer, nil
	case RoleAdmin, RoleFleet, RoleSecurity, RoleOfficer:
		return r, nil
	}
	return "", fmt.Errorf("role must be admin, fleet, security or officer (user means officer), got %q", s)
}

// Staff says whether the role opens the console at all: admin, fleet or
// security. A body camera or a reset of MFA on such an account is an
// administrator's decision alone (a camera is the account's second
// factor; a reset leaves it to the password until a new one is set up).
func (r Role) Staff() bool { return r == RoleAdmin || r == RoleFleet || r == RoleSecurity }

// Permission is what a console page or action needs.
type Permission string

// Permissions of the console.
const (
	// PermConsole opens the console at all (its overview).
	PermConsole Permission = "console"
	// PermCameras reads and runs the fleet: cameras, their operations
	// and assignments.
	PermCameras Permission = "cameras"
	// PermUsers reads users and resets their MFA, devices and throttles.
	PermUsers Permission = "users"
	// PermPolicy changes the organisation's MFA policy.
	PermPolicy Permission = "policy"
	// PermAudit reads and exports the audit log.
	PermAudit Permission = "audit"
	// PermReportLost reports a camera lost or stolen: fleet and security
	// staff and administrators (whoever hears of it first acts at once).
	PermReportLost Permission = "report-lost"
	// PermFound ends a camera's lost report (after its fresh provision):
	// an administrator's alone, as giving a camera to a staff account is
	// (it puts a camera that was out of the agency's hands back among
	// the second factors).
	PermFound Permission = "found"
)

// Can tells whether r has permission p.
func (r Role) Can(p Permission) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleFleet:
		return p == PermConsole || p == PermCameras || p == PermReportLost
	case RoleSecurity:
		return p == PermConsole || p == PermUsers || p == PermPolicy || p == PermAudit || p == PermReportLost
	}
	return false
}

// Console tells whether r may open the fleet console.
func (r Role) Console() bool { return r.Can(PermConsole) }

// Label names the role for people.
func (r Role) Label() string {
	switch r {
	case RoleAdmin:
		return "Administrator"
	case RoleFleet:
		return "Fleet manager"
	case RoleSecurity:
		return "Security officer"
	case RoleOfficer:
		return "Officer"
	}
	return string(r)
}
