package dynsec

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
)

// Names camotp gives what it creates in the plugin.
const (
	// CameraRolePrefix + serial is a camera's role: it owns the camera's
	// ACLs, and a broker client is camotp's camera only if it has this role.
	CameraRolePrefix = "camotp-camera-"
	// ServerRole is the role of the server's own client.
	ServerRole = "camotp-server"

	cameraText = "camotp camera"
	serverText = "camotp server"
)

// batch is how many commands go in one control message: few enough that
// the broker, which saves its file after each, answers within seconds.
const batch = 50

// ErrForeignClient is returned when a broker client with a camera's (or the
// server's) username exists and was not made by camotp: camotp will not
// take it over or change its password.
var ErrForeignClient = errors.New("broker client exists and is not managed by camotp")

// Camera is a registered camera as the accounts need it.
type Camera struct {
	Serial string
	Key    camkey.PublicKey
}

// Directory lists the registered cameras.
type Directory interface {
	Cameras(ctx context.Context) ([]Camera, error)
}

// CameraList is a fixed Directory.
type CameraList []Camera

// Cameras returns the list.
func (l CameraList) Cameras(context.Context) ([]Camera, error) { return l, nil }

// ServerLogin is the server's own broker client.
type ServerLogin struct {
	Username, ClientID, Password string
}

// Accounts keeps the plugin's clients in step with camotp's registry: one
// client (username = client ID = serial, the derived broker password) and
// one role per registered camera, allowed to subscribe to cams/<serial>/prov
// and publish to cams/<serial>/ack and cams/<serial>/status only; one
// client for the server, allowed to publish commands to every camera and
// read every ack and status; everything else denied by default.
type Accounts struct {
	c         *Client
	serverBox [32]byte
	server    ServerLogin
	log       *slog.Logger
	page      int // items per listClients/listRoles request
}

// NewAccounts returns the accounts kept through c. serverBox is the server's
// X25519 private key (camera passwords are derived from it, never stored).
func NewAccounts(c *Client, serverBox [32]byte, server ServerLogin, log *slog.Logger) *Accounts {
	if log == nil {
		log = slog.Default()
	}
	return &Accounts{c: c, serverBox: serverBox, server: server, log: log, page: 1000}
}

// fingerprint names a password without revealing it: it is kept in the
// client's text description, so a restart can tell whether the broker
// holds the current password without setting it again (setting a password
// disconnects the client). The passwords are 256-bit secrets: a truncated
// hash of one gives nothing to guess from.
func fingerprint(password string) string {
	sum := sha256.Sum256([]byte("camotp dynsec fingerprint\x00" + password))
	return "camotp pw " + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func allow(acltype, topic string) map[string]any {
	return map[string]any{"acltype": acltype, "topic": topic, "allow": true}
}

func cameraACLs(serial string) []map[string]any {
	t := "cams/" + serial + "/"
	return []map[string]any{
		allow("subscribePattern", t+"prov"),
		allow("publishClientReceive", t+"prov"),
		allow("publishClientSend", t+"ack"),
		allow("publishClientSend", t+"status"),
	}
}

// SharedGroup is the shared-subscription group under which the server's
// nodes read the cameras' acks and status ($share/SharedGroup/cams/+/ack):
// mosquitto checks a shared subscription's ACL on the whole filter.
const SharedGroup = "camotp"

func serverACLs() []map[string]any {
	return []map[string]any{
		allow("publishClientSend", "cams/+/prov"),
		allow("subscribePattern", "cams/+/ack"),
		allow("subscribePattern", "cams/+/status"),
		allow("subscribePattern", "$share/"+SharedGroup+"/cams/+/ack"),
		allow("subscribePattern", "$share/"+SharedGroup+"/cams/+/status"),
		allow("publishClientReceive", "cams/+/ack"),
		allow("publishClientReceive", "cams/+/status"),
	}
}

func createRole(name string, acls []map[string]any) Command {
	return Command{"command": "createRole", "rolename": name, "acls": acls}
}

// createClient makes a login; clientID "" lets it connect under any
// client ID (the server's nodes each have their own).
func createClient(user, clientID, password, text, desc, role string) Command {
	c := Command{"command": "createClient", "username": user, "password": password,
		"textname": text, "textdescription": desc, "roles": []map[string]any{{"rolename": role}}}
	if clientID != "" {
		c["clientid"] = clientID
	}
	return c
}

// setPassword replaces a client's password (the plugin disconnects it) and
// records the new fingerprint.
func setPassword(user, password string) []Command {
	return []Command{
		{"command": "setClientPassword", "username": user, "password": password},
		{"command": "modifyClient", "username": user, "textdescription": fingerprint(password)},
	}
}

// clientInfo is a client as getClient and listClients describe it.
type clientInfo struct {
	Username        string    `json:"username"`
	TextDescription string    `json:"textdescription"`
	Roles           []roleRef `json:"roles"`
}

// roleRef is one of a client's roles.
type roleRef struct {
	Rolename string `json:"rolename"`
}

func (c clientInfo) hasRole(role string) bool {
	return slices.ContainsFunc(c.Roles, func(r roleRef) bool { return r.Rolename == role })
}

// run sends cmds in batches and returns the first error of a command whose
// failure is not allowed by ok (nil: no failure is).
func (a *Accounts) run(ctx context.Context, cmds []Command, ok func(Command, error) bool) error {
	for start := 0; start < len(cmds); start += batch {
		part := cmds[start:min(start+batch, len(cmds))]
		resps, err := a.c.Do(ctx, part...)
		if err != nil {
			return err
		}
		for i, r := range resps {
			if err := r.Err(); err != nil && (ok == nil || !ok(part[i], err)) {
				return fmt.Errorf("%w (%s)", err, subject(part[i]))
			}
		}
	}
	return nil
}

func subject(c Command) string {
	for _, k := range []string{"username", "rolename"} {
		if v, ok := c[k].(string); ok {
			return k + " " + v
		}
	}
	return ""
}

// existsOK tolerates "already exists" for creations.
func existsOK(_ Command, err error) bool { return errors.Is(err, ErrExists) }

// notFoundOK tolerates deleting what is already gone.
func notFoundOK(_ Command, err error) bool { return errors.Is(err, ErrNotFound) }

// Setup denies by default what no role allows (publish, receive, subscribe,
// unsubscribe), and creates or updates the server's role and client.
func (a *Accounts) Setup(ctx context.Context) error {
	deny := func(t string) map[string]any { return map[string]any{"acltype": t, "allow": false} }
	cmds := []Command{{"command": "setDefaultACLAccess", "acls": []map[string]any{
		deny("publishClientSend"), deny("publishClientReceive"), deny("subscribe"), deny("unsubscribe")}}}
	cmds = append(cmds, createRole(ServerRole, serverACLs()))
	// On an existing role, the ACLs are added again (kept if present).
	for _, acl := range serverACLs() {
		cmds = append(cmds, Command{"command": "addRoleACL", "rolename": ServerRole, "acltype": acl["acltype"], "topic": acl["topic"], "allow": true})
	}
	if err := a.run(ctx, cmds, existsOK); err != nil {
		return fmt.Errorf("dynsec setup: %w", err)
	}
	s := a.server
	if err := a.ensure(ctx, s.Username, s.ClientID, s.Password, serverText, ServerRole, nil); err != nil {
		return fmt.Errorf("dynsec setup: server client %q: %w", s.Username, err)
	}
	return nil
}

// ensure creates the client (and, with acls, its role) or, if it exists
// and has role, brings its password up to date.
func (a *Accounts) ensure(ctx context.Context, user, clientID, password, text, role string, acls []map[string]any) error {
	var cmds []Command
	if acls != nil {
		cmds = append(cmds, createRole(role, acls))
	}
	cmds = append(cmds, createClient(user, clientID, password, text, fingerprint(password), role))
	resps, err := a.c.Do(ctx, cmds...)
	if err != nil {
		return err
	}
	for _, r := range resps[:len(resps)-1] {
		if err := r.Err(); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	err = resps[len(resps)-1].Err()
	if err == nil {
		a.log.Info("dynsec client created", "username", user, "role", role)
		return nil
	}
	if !errors.Is(err, ErrExists) {
		return err
	}
	info, err := a.client(ctx, user)
	if err != nil {
		return err
	}
	if !info.hasRole(role) {
		return fmt.Errorf("%w: %q has no role %q", ErrForeignClient, user, role)
	}
	if info.TextDescription == fingerprint(password) {
		return nil
	}
	a.log.Info("dynsec client password changed", "username", user)
	return a.run(ctx, setPassword(user, password), nil)
}

func (a *Accounts) client(ctx context.Context, user string) (clientInfo, error) {
	resps, err := a.c.Do(ctx, Command{"command": "getClient", "username": user})
	if err != nil {
		return clientInfo{}, err
	}
	if err := resps[0].Err(); err != nil {
		return clientInfo{}, err
	}
	var d struct {
		Client clientInfo `json:"client"`
	}
	if err := json.Unmarshal(resps[0].Data, &d); err != nil {
		return clientInfo{}, fmt.Errorf("dynsec getClient %s: %w", user, err)
	}
	return d.Client, nil
}

func (a *Accounts) password(serial string, key camkey.PublicKey) (string, error) {
	if err := device.ValidateSerial(serial); err != nil {
		return "", err
	}
	return camkey.ServerBrokerPassword(a.serverBox, serial, key)
}

// EnsureCamera gives the camera its broker client and role, or updates its
// password if the keys it derives from changed. A client of that name that
// camotp did not create is left alone (ErrForeignClient).
func (a *Accounts) EnsureCamera(ctx context.Context, serial string, key camkey.PublicKey) error {
	pw, err := a.password(serial, key)
	if err != nil {
		return fmt.Errorf("dynsec camera %s: %w", serial, err)
	}
	if err := a.ensure(ctx, serial, serial, pw, cameraText, CameraRolePrefix+serial, cameraACLs(serial)); err != nil {
		return fmt.Errorf("dynsec camera %s: %w", serial, err)
	}
	return nil
}

// RemoveCamera deletes the camera's client (if camotp made it: the broker
// disconnects it) and its role.
func (a *Accounts) RemoveCamera(ctx context.Context, serial string) error {
	role := CameraRolePrefix + serial
	info, err := a.client(ctx, serial)
	var cmds []Command
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("dynsec remove camera %s: %w", serial, err)
	case info.hasRole(role):
		cmds = append(cmds, Command{"command": "deleteClient", "username": serial})
	}
	cmds = append(cmds, Command{"command": "deleteRole", "rolename": role})
	if err := a.run(ctx, cmds, notFoundOK); err != nil {
		return fmt.Errorf("dynsec remove camera %s: %w", serial, err)
	}
	a.log.Info("dynsec camera removed", "serial", serial)
	return nil
}

// SyncResult counts what Sync changed.
type SyncResult struct {
	Created, Updated, Removed int
	// Foreign lists serials whose username is taken by a client camotp did
	// not make: those cameras cannot log in until an operator removes it.
	Foreign []string
}

// list pages through listClients or listRoles until it has totalCount items.
func (a *Accounts) list(ctx context.Context, command, field string, verbose bool) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for {
		resps, err := a.c.Do(ctx, Command{"command": command, "verbose": verbose, "count": a.page, "offset": len(all)})
		if err != nil {
			return nil, err
		}
		if err := resps[0].Err(); err != nil {
			return nil, err
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(resps[0].Data, &d); err != nil {
			return nil, fmt.Errorf("dynsec %s: %w", command, err)
		}
		var items []json.RawMessage
		var total int
		if err := json.Unmarshal(d[field], &items); err != nil {
			return nil, fmt.Errorf("dynsec %s: %w", command, err)
		}
		if err := json.Unmarshal(d["totalCount"], &total); err != nil {
			return nil, fmt.Errorf("dynsec %s: totalCount: %w", command, err)
		}
		all = append(all, items...)
		if len(items) == 0 || len(all) >= total {
			return all, nil
		}
	}
}

// Sync runs Setup, then makes the plugin's camera clients match the
// directory: every registered camera has its client and role with its
// current password; clients and roles camotp made for cameras that are no
// longer registered are deleted. Clients camotp did not make are never
// changed.
//
// The directory is read after the plugin's clients are listed: a camera
// registered (and given its login by EnsureCamera) while Sync runs is then
// either in the list Sync reads or its login is not in the listing, so
// Sync never deletes a new camera's login.
func (a *Accounts) Sync(ctx context.Context, dir Directory) (SyncResult, error) {
	var res SyncResult
	if err := a.Setup(ctx); err != nil {
		return res, err
	}
	rawClients, err := a.list(ctx, "listClients", "clients", true)
	if err != nil {
		return res, fmt.Errorf("dynsec sync: %w", err)
	}
	clients := map[string]clientInfo{}
	for _, raw := range rawClients {
		var c clientInfo
		if err := json.Unmarshal(raw, &c); err != nil {
			return res, fmt.Errorf("dynsec sync: listClients: %w", err)
		}
		clients[c.Username] = c
	}
	rawRoles, err := a.list(ctx, "listRoles", "roles", false)
	if err != nil {
		return res, fmt.Errorf("dynsec sync: %w", err)
	}
	roles := map[string]bool{}
	for _, raw := range rawRoles {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return res, fmt.Errorf("dynsec sync: listRoles: %w", err)
		}
		roles[name] = true
	}
	cams, err := dir.Cameras(ctx)
	if err != nil {
		return res, fmt.Errorf("dynsec sync: registered cameras: %w", err)
	}

	want := map[string]bool{}
	var cmds []Command
	for _, cam := range cams {
		want[cam.Serial] = true
		role := CameraRolePrefix + cam.Serial
		pw, err := a.password(cam.Serial, cam.Key)
		if err != nil {
			a.log.Error("dynsec sync: camera skipped", "serial", cam.Serial, "err", err)
			continue
		}
		c, exists := clients[cam.Serial]
		switch {
		case !exists:
			if !roles[role] {
				cmds = append(cmds, createRole(role, cameraACLs(cam.Serial)))
			}
			cmds = append(cmds, createClient(cam.Serial, cam.Serial, pw, cameraText, fingerprint(pw), role))
			res.Created++
		case !c.hasRole(role):
			res.Foreign = append(res.Foreign, cam.Serial)
			a.log.Error("dynsec sync: a broker client with the camera's username exists and is not camotp's; the camera cannot log in until it is removed",
				"serial", cam.Serial)
		case c.TextDescription != fingerprint(pw):
			cmds = append(cmds, setPassword(cam.Serial, pw)...)
			res.Updated++
		}
	}
	for user, c := range clients {
		if !want[user] && c.hasRole(CameraRolePrefix+user) {
			cmds = append(cmds, Command{"command": "deleteClient", "username": user})
			res.Removed++
		}
	}
	for role := range roles {
		if serial, ok := strings.CutPrefix(role, CameraRolePrefix); ok && !want[serial] {
			cmds = append(cmds, Command{"command": "deleteRole", "rolename": role})
		}
	}
	if err := a.run(ctx, cmds, func(c Command, err error) bool {
		return errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound)
	}); err != nil {
		return res, fmt.Errorf("dynsec sync: %w", err)
	}
	a.log.Info("dynsec accounts in step with the registry", "cameras", len(cams), "created", res.Created,
		"password_updated", res.Updated, "removed", res.Removed, "foreign", len(res.Foreign))
	return res, nil
}
