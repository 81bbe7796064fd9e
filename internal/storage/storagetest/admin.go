package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
)

func radiusCases() []testCase {
	return []testCase{
		{"SecretRoundTrip", func(t *testing.T, e *env) {
			if cs, err := e.s.RadiusClients(e.ctx); err != nil || len(cs) != 0 {
				t.Fatalf("no clients yet: %+v %v", cs, err)
			}
			secrets := map[string][]byte{"vpn1": []byte("s3cret-shared-with-the-vpn"), "mdt": {0, 1, 2, 0xff, 0xfe}}
			must(t, e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.1.2.3/24"), Secret: secrets["vpn1"]}), "add vpn1")
			e.clock.Advance(time.Second)
			must(t, e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: "mdt", CIDR: netip.MustParsePrefix("2001:db8::/48"), Secret: secrets["mdt"]}), "add mdt")
			cs, err := e.s.RadiusClients(e.ctx)
			must(t, err, "list")
			want := []struct {
				name, cidr string
				created    time.Time
			}{{"mdt", "2001:db8::/48", T0.Add(time.Second)}, {"vpn1", "10.1.2.0/24", T0}} // by name, CIDR masked
			if len(cs) != len(want) {
				t.Fatalf("clients %+v", cs)
			}
			for i, w := range want {
				c := cs[i]
				if c.Name != w.name || c.CIDR.String() != w.cidr || !bytes.Equal(c.Secret, secrets[w.name]) {
					t.Fatalf("client %d: %s %s %q, want %s %s with its secret", i, c.Name, c.CIDR, c.Secret, w.name, w.cidr)
				}
				sameTime(t, c.CreatedAt, w.created, c.Name+" created")
			}
		}},
		{"NameAndCIDRUnique", func(t *testing.T, e *env) {
			must(t, e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.1.2.0/24"), Secret: []byte("a")}), "add")
			for _, dup := range []model.RadiusClient{
				{Name: "vpn1", CIDR: netip.MustParsePrefix("192.0.2.0/24"), Secret: []byte("b")},
				{Name: "vpn2", CIDR: netip.MustParsePrefix("10.1.2.77/24"), Secret: []byte("b")}, // the same network
			} {
				mustBe(t, e.s.AddRadiusClient(e.ctx, dup), storage.ErrExists, fmt.Sprintf("duplicate %s %s", dup.Name, dup.CIDR))
			}
			if cs, _ := e.s.RadiusClients(e.ctx); len(cs) != 1 || string(cs[0].Secret) != "a" {
				t.Fatalf("clients after refused duplicates: %+v", cs)
			}
		}},
		{"Remove", func(t *testing.T, e *env) {
			for i, n := range []string{"vpn1", "vpn2"} {
				must(t, e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: n, CIDR: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)), Secret: []byte(n)}), "add")
			}
			must(t, e.s.RemoveRadiusClient(e.ctx, "vpn1"), "remove")
			mustBe(t, e.s.RemoveRadiusClient(e.ctx, "vpn1"), storage.ErrNotFound, "remove again")
			cs, err := e.s.RadiusClients(e.ctx)
			if err != nil || len(cs) != 1 || cs[0].Name != "vpn2" {
				t.Fatalf("clients after removal %+v %v", cs, err)
			}
			// Its network is free again.
			must(t, e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: "vpn3", CIDR: netip.MustParsePrefix("10.0.0.0/16"), Secret: []byte("c")}), "reuse the network")
		}},
	}
}

func auditCases() []testCase {
	return []testCase{
		{"Entries", func(t *testing.T, e *env) {
			if log, err := e.s.AuditLog(e.ctx, "", 10); err != nil || len(log) != 0 {
				t.Fatalf("empty log: %+v %v", log, err)
			}
			in := []model.AuditEntry{
				{Actor: "admin", Action: "user.add", Subject: "alice", Result: "ok", SourceIP: "192.0.2.1", Detail: "role officer"},
				{Actor: "alice", Action: "login.password", Subject: "alice", Result: "error: wrong password", SourceIP: "192.0.2.2"},
				{Actor: "admin", Action: "camera.add", Subject: "CAM-1", Result: "ok"},
				{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok", At: T0.Add(time.Hour)}, // At given: kept
			}
			for _, a := range in {
				e.clock.Advance(time.Second)
				must(t, e.s.Audit(e.ctx, a), "audit")
			}
			log, err := e.s.AuditLog(e.ctx, "", 10)
			must(t, err, "read all")
			if len(log) != 4 {
				t.Fatalf("%d entries, want 4", len(log))
			}
			for i, got := range log {
				want := in[3-i]
				if got.Actor != want.Actor || got.Action != want.Action || got.Subject != want.Subject || got.Result != want.Result ||
					got.SourceIP != want.SourceIP || got.Detail != want.Detail {
					t.Fatalf("entry %d: %+v, want %+v (newest first)", i, got, want)
				}
				at := want.At
				if at.IsZero() {
					at = T0.Add(time.Duration(4-i) * time.Second)
				}
				sameTime(t, got.At, at, fmt.Sprintf("entry %d time", i))
			}
			alice, err := e.s.AuditLog(e.ctx, "alice", 10)
			must(t, err, "read alice's")
			if len(alice) != 3 || alice[0].Action != "login.mfa" || alice[2].Action != "user.add" {
				t.Fatalf("alice's entries %+v", alice)
			}
			if two, _ := e.s.AuditLog(e.ctx, "alice", 2); len(two) != 2 || two[0].Action != "login.mfa" || two[1].Action != "login.password" {
				t.Fatalf("alice's newest two %+v", two)
			}
			if all, _ := e.s.AuditLog(e.ctx, "", 0); len(all) != 4 {
				t.Fatalf("AuditLog limit 0: %d entries, want all 4 (a default limit)", len(all))
			}
			if e.s.AuditFailures() != 0 {
				t.Fatalf("%d audit failures", e.s.AuditFailures())
			}
		}},
	}
}

// chainCases are the audit log's hash chains as every backend keeps them.
func chainCases() []testCase {
	return []testCase{
		{"ParallelAppendsHold", func(t *testing.T, e *env) {
			v, err := e.s.VerifyAudit(e.ctx)
			must(t, err, "verify the empty log")
			if v.Broken != nil || v.Rows != 0 || v.Chains != e.s.AuditChains() || len(v.Heads) != v.Chains {
				t.Fatalf("empty log: %+v", v)
			}
			// Appends from goroutines released together, with text a
			// backend must make storable: every row lands in a chain, in
			// one place, and every chain holds.
			const n = 96
			together.Run(n, func(i int) {
				must(t, e.s.Audit(e.ctx, model.AuditEntry{Actor: fmt.Sprintf("a%d", i), Action: "chain.test", Subject: "s\x00\xff",
					Result: "ok", Detail: fmt.Sprint(i)}), "audit")
			})
			v, err = e.s.VerifyAudit(e.ctx)
			must(t, err, "verify")
			if v.Broken != nil || v.Rows != n {
				t.Fatalf("after %d parallel appends: %+v (broken %+v)", n, v, v.Broken)
			}
			var total int64
			for _, h := range v.Heads {
				total += h.Seq
			}
			if total != n {
				t.Fatalf("heads add up to %d rows, want %d: %+v", total, n, v.Heads)
			}
			seen := map[string]bool{}
			for c := range e.s.AuditChains() {
				var after int64
				for {
					rows, err := e.s.AuditAfter(e.ctx, c, after, 7)
					must(t, err, "read a chain")
					for _, r := range rows {
						if r.Chain != c || r.Seq != after+1 || len(r.MAC) != 32 {
							t.Fatalf("chain %d after %d: row %+v", c, after, r)
						}
						after = r.Seq
						seen[r.Actor] = true
					}
					if len(rows) < 7 {
						break
					}
				}
			}
			if len(seen) != n {
				t.Fatalf("the chains hold %d of the %d rows", len(seen), n)
			}
			// The rows read by the console carry their place too.
			page, err := e.s.AuditPage(e.ctx, model.AuditQuery{Limit: 1})
			must(t, err, "page")
			if len(page) != 1 || page[0].Seq == 0 || len(page[0].MAC) != 32 {
				t.Fatalf("newest row %+v", page)
			}
			if e.s.AuditFailures() != 0 {
				t.Fatalf("%d audit failures", e.s.AuditFailures())
			}
		}},
	}
}

func healthCases() []testCase {
	return []testCase{
		{"PingProbeSchema", func(t *testing.T, e *env) {
			must(t, e.s.Ping(e.ctx), "ping")
			must(t, e.s.ProbeWrite(e.ctx), "probe write")
			must(t, e.s.ProbeWrite(e.ctx), "probe write again")
			v, err := e.s.SchemaVersion(e.ctx)
			if err != nil || v <= 0 {
				t.Fatalf("schema version %d %v, want > 0", v, err)
			}
		}},
	}
}

// writes are one call of every kind of write, for the Close subtests.
func writes(e *env) map[string]func() error {
	s := testSeed(1)
	entry := model.AuditEntry{Actor: "t", Action: "after.close", Subject: "s", Result: "ok"}
	r := pairRule("pair")
	return map[string]func() error{
		"AddUser":   func() error { return e.s.AddUser(e.ctx, model.User{Username: "late", Email: "x"}, "h") },
		"AddCamera": func() error { return e.s.AddCamera(e.ctx, "LATE", "body4", "pub") },
		"StartOp": func() error {
			_, err := e.s.StartOp(e.ctx, "CAM-1", model.OpRotate, &s, nil, command("CAM-1", ""))
			return err
		},
		"SetSetting": func() error { return e.s.SetSetting(e.ctx, "k", "v") },
		"AcceptStep": func() error { _, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 2, 0); return err },
		"ReserveAttempt": func() error {
			_, err := e.s.ReserveAttempt(e.ctx, e.now(), r)
			return err
		},
		"RecordFailure": func() error { _, err := e.s.RecordFailure(e.ctx, e.now(), r); return err },
		"CreateToken": func() error {
			_, err := e.s.CreateToken(e.ctx, model.TokenSession, "alice", "", "", time.Hour)
			return err
		},
		"ExchangeToken": func() error {
			_, err := e.s.ExchangeToken(e.ctx, "x", model.TokenSession, "alice", "", "", time.Hour, nil, entry, model.Clear(r))
			return err
		},
		"AddOIDCClient": func() error { return e.s.AddOIDCClient(e.ctx, model.OIDCClient{ID: "late", Public: true}) },
		"AddRadiusClient": func() error {
			return e.s.AddRadiusClient(e.ctx, model.RadiusClient{Name: "late", CIDR: netip.MustParsePrefix("10.9.0.0/16"), Secret: []byte("s")})
		},
		"SetPresence": func() error { return e.s.SetPresence(e.ctx, "CAM-1", true, e.now()) },
		"ClaimResends": func() error {
			_, err := e.s.ClaimResends(e.ctx, e.now(), time.Second, 10)
			return err
		},
		"Audit":      func() error { return e.s.Audit(e.ctx, entry) },
		"ProbeWrite": func() error { return e.s.ProbeWrite(e.ctx) },
	}
}

func closeCases() []testCase {
	return []testCase{
		{"WritesFailWithErrClosed", func(t *testing.T, e *env) {
			e.provision(t, "CAM-1", testSeed(1))
			// Warm every statement up, so that a backend that keeps
			// prepared statements meets them closed.
			for _, w := range writes(e) {
				w()
			}
			must(t, e.s.Close(), "close")
			// Repeated: a write must not race the closed store (a select
			// between a closed store and a free queue slot is a coin toss).
			for round := range 8 {
				for name, w := range writes(e) {
					var err error
					within(t, 30*time.Second, name+" after Close", func() { err = w() })
					if !errors.Is(err, storage.ErrClosed) {
						t.Fatalf("round %d: %s after Close: %v, want ErrClosed", round, name, err)
					}
				}
			}
			within(t, 30*time.Second, "a second Close", func() { e.s.Close() })
		}},
		{"WritesOfAFreshStoreFailWithErrClosed", func(t *testing.T, e *env) {
			must(t, e.s.Close(), "close")
			for name, w := range writes(e) {
				var err error
				within(t, 30*time.Second, name+" after Close", func() { err = w() })
				if !errors.Is(err, storage.ErrClosed) {
					t.Fatalf("%s after Close: %v, want ErrClosed", name, err)
				}
			}
		}},
		{"AuditFailureHook", func(t *testing.T, e *env) {
			var failed []model.AuditEntry
			var failErr error
			e.s.SetAuditFailureHook(func(a model.AuditEntry, err error) {
				failed = append(failed, a)
				failErr = err
			})
			must(t, e.s.Audit(e.ctx, model.AuditEntry{Actor: "t", Action: "kept", Subject: "s", Result: "ok"}), "audit")
			if len(failed) != 0 || e.s.AuditFailures() != 0 {
				t.Fatalf("a written entry was reported as failed: %+v", failed)
			}
			must(t, e.s.Close(), "close")
			lost := model.AuditEntry{Actor: "t", Action: "lost", Subject: "s", Result: "ok"}
			var err error
			within(t, 30*time.Second, "Audit after Close", func() { err = e.s.Audit(e.ctx, lost) })
			mustBe(t, err, storage.ErrClosed, "audit after close")
			// The hook has been told by the time Audit returns.
			if len(failed) != 1 || failed[0].Action != "lost" || !errors.Is(failErr, storage.ErrClosed) {
				t.Fatalf("hook told %+v (%v), want the lost entry with ErrClosed", failed, failErr)
			}
			if n := e.s.AuditFailures(); n != 1 {
				t.Fatalf("AuditFailures %d, want 1", n)
			}
		}},
	}
}
