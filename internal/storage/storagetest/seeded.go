package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// seeded is camera serial with seed testSeed(b), its public key pub.
func seeded(serial string, b byte, pub string) model.SeededCamera {
	return model.SeededCamera{Serial: serial, Model: device.Workforce, PublicKey: pub, Seed: testSeed(b)}
}

// serials lists the store's cameras.
func (e *env) serials(t *testing.T) []string {
	t.Helper()
	cs, err := e.s.Cameras(e.ctx)
	must(t, err, "list cameras")
	var out []string
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	return out
}

// importAudit is an import's audit rows of serials.
func importAudit(serials ...string) []model.AuditEntry {
	var out []model.AuditEntry
	for _, sn := range serials {
		out = append(out, model.AuditEntry{Actor: "admin", Action: "camera.import", Subject: sn, Result: "ok"})
	}
	return out
}

// exportAudit is an export's audit rows of serials.
func exportAudit(serials ...string) []model.AuditEntry {
	var out []model.AuditEntry
	for _, sn := range serials {
		out = append(out, model.AuditEntry{Actor: "admin", Action: "camera.export", Subject: sn, Result: "ok"})
	}
	return out
}

func importCases() []testCase {
	return []testCase{
		{"ImportedAreProvisioned", func(t *testing.T, e *env) {
			must(t, e.s.ImportCameras(e.ctx, nil, nil), "import nothing")
			must(t, e.s.ImportCameras(e.ctx, []model.SeededCamera{seeded("TOK-1", 1, ""), seeded("TOK-2", 2, "pub:TOK-2")}, importAudit("TOK-1", "TOK-2")), "import")
			for i, sn := range []string{"TOK-1", "TOK-2"} {
				c, err := e.s.Camera(e.ctx, sn)
				must(t, err, "read "+sn)
				pub := map[string]string{"TOK-1": "", "TOK-2": "pub:TOK-2"}[sn]
				if c.State != model.StateProvisioned || c.Version != 1 || c.PendingOp != "" || c.Model != device.Workforce || c.PublicKey != pub {
					t.Fatalf("%s: %+v, want provisioned at version 1 with key %q", sn, c, pub)
				}
				sameTime(t, c.CreatedAt, T0, sn+" created")
				seed, err := e.s.ActiveSeed(e.ctx, sn)
				must(t, err, "active seed of "+sn)
				want := testSeed(byte(i + 1))
				want.Version = 1
				sameSeed(t, seed, want, sn)
				if got := e.auditActions(t, sn); !slices.Equal(got, []string{"camera.import"}) {
					t.Fatalf("%s: audit %v, want the import's row", sn, got)
				}
			}
			// Its life goes on like any provisioned camera's: a rotation
			// keeps the imported seed until the new one is proven.
			v := e.startOp(t, "TOK-2", model.OpRotate, new(testSeed(9)))
			if v != 2 {
				t.Fatalf("rotate: version %d, want 2", v)
			}
			seed, err := e.s.ActiveSeed(e.ctx, "TOK-2")
			must(t, err, "seed during rotation")
			sameSeed(t, seed, device.Seed{Secret: testSeed(2).Secret, Algorithm: "SHA1", Digits: 6, Period: 30, Version: 1}, "seed during rotation")
			_, err = e.s.CompleteOp(e.ctx, "TOK-2", v)
			must(t, err, "complete rotation")
			seed, err = e.s.ActiveSeed(e.ctx, "TOK-2")
			must(t, err, "seed after rotation")
			want := testSeed(9)
			want.Version = 2
			sameSeed(t, seed, want, "seed after rotation")
		}},
		{"ImportIsAllOrNothing", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-2")
			for _, tt := range []struct {
				name  string
				cams  []model.SeededCamera
				index int
			}{
				{"serial known already", []model.SeededCamera{seeded("CAM-1", 1, ""), seeded("CAM-2", 2, ""), seeded("CAM-3", 3, "")}, 1},
				{"serial given twice", []model.SeededCamera{seeded("CAM-4", 1, ""), seeded("CAM-5", 2, ""), seeded("CAM-4", 3, "")}, 2},
			} {
				var sns []string
				for _, c := range tt.cams {
					sns = append(sns, c.Serial)
				}
				err := e.s.ImportCameras(e.ctx, tt.cams, importAudit(sns...))
				var ie *model.ImportError
				if !errors.As(err, &ie) || ie.Index != tt.index || !errors.Is(err, storage.ErrExists) {
					t.Fatalf("%s: %v, want ImportError at %d wrapping ErrExists", tt.name, err, tt.index)
				}
				if got := e.serials(t); !slices.Equal(got, []string{"CAM-2"}) {
					t.Fatalf("%s: cameras %v after a refused import, want only CAM-2", tt.name, got)
				}
				for _, sn := range sns {
					if got := e.auditActions(t, sn); len(got) != 0 {
						t.Fatalf("%s: a refused import wrote audit rows of %s: %v", tt.name, sn, got)
					}
				}
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-2"); c.State != model.StateRegistered || c.PublicKey != "pub:CAM-2" {
				t.Fatalf("the refused import changed CAM-2: %+v", c)
			}
		}},
		{"ImportRace", func(t *testing.T, e *env) {
			// Racers import overlapping batches; each batch is taken
			// whole or not at all, and every camera has the seed of the
			// one batch that took it.
			e.addCamera(t, "CAM-00")
			errs := race(smallRacers, func(i int) error {
				var cams []model.SeededCamera
				for j := range 3 {
					cams = append(cams, seeded(fmt.Sprintf("CAM-%02d", i+j), byte(i+1), ""))
				}
				return e.s.ImportCameras(e.ctx, cams, nil)
			})
			taken := map[string]int{"CAM-00": -1}
			for i, err := range errs {
				if err != nil {
					mustBe(t, err, storage.ErrExists, fmt.Sprintf("racer %d", i))
					continue
				}
				for j := range 3 {
					sn := fmt.Sprintf("CAM-%02d", i+j)
					if w, ok := taken[sn]; ok {
						t.Fatalf("%s imported by racers %d and %d", sn, w, i)
					}
					taken[sn] = i
				}
			}
			if len(taken) == 1 {
				t.Fatal("no racer imported anything")
			}
			got := e.serials(t)
			if len(got) != len(taken) {
				t.Fatalf("cameras %v, want exactly the winners' %v", got, taken)
			}
			for sn, i := range taken {
				if i < 0 {
					continue
				}
				seed, err := e.s.ActiveSeed(e.ctx, sn)
				must(t, err, "seed of "+sn)
				want := testSeed(byte(i + 1))
				want.Version = 1
				sameSeed(t, seed, want, sn+" (winner's seed)")
			}
		}},
		{"SetCameraKeyOnlyWhenNone", func(t *testing.T, e *env) {
			must(t, e.s.ImportCameras(e.ctx, []model.SeededCamera{seeded("TOK-1", 1, "")}, nil), "import")
			e.addCamera(t, "CAM-1")
			mustBe(t, e.s.SetCameraKey(e.ctx, "NOPE", "pub:x"), storage.ErrNotFound, "unknown camera")
			mustBe(t, e.s.SetCameraKey(e.ctx, "CAM-1", "pub:other"), storage.ErrConflict, "camera with a key")
			e.clock.Advance(time.Second)
			must(t, e.s.SetCameraKey(e.ctx, "TOK-1", "pub:TOK-1"), "first key")
			mustBe(t, e.s.SetCameraKey(e.ctx, "TOK-1", "pub:again"), storage.ErrConflict, "second key")
			for sn, want := range map[string]string{"TOK-1": "pub:TOK-1", "CAM-1": "pub:CAM-1"} {
				if c, err := e.s.Camera(e.ctx, sn); err != nil || c.PublicKey != want || (sn == "TOK-1" && (c.State != model.StateProvisioned || c.Version != 1)) {
					t.Fatalf("%s: %+v %v, want key %q", sn, c, err, want)
				}
			}
			// Racers give the keyless camera a key at once: one wins.
			must(t, e.s.ImportCameras(e.ctx, []model.SeededCamera{seeded("TOK-2", 2, "")}, nil), "import TOK-2")
			errs := race(smallRacers, func(i int) error { return e.s.SetCameraKey(e.ctx, "TOK-2", fmt.Sprintf("pub:%d", i)) })
			w := oneWinner(t, errs, storage.ErrConflict, "set key")
			if c, _ := e.s.Camera(e.ctx, "TOK-2"); c.PublicKey != fmt.Sprintf("pub:%d", w) {
				t.Fatalf("TOK-2 key %q, want the winner's pub:%d", c.PublicKey, w)
			}
		}},
		{"ExportSeedsReadsAndAudits", func(t *testing.T, e *env) {
			e.provision(t, "CAM-1", testSeed(1))
			e.rotateBegun(t, "CAM-1", testSeed(3))
			must(t, e.s.ImportCameras(e.ctx, []model.SeededCamera{seeded("TOK-2", 2, "")}, nil), "import")
			e.addCamera(t, "CAM-NEW")
			before := e.auditActions(t, "CAM-1")
			// Refusals read nothing out and append nothing.
			for _, tt := range []struct {
				serials []string
				is      error
			}{
				{[]string{"TOK-2", "NOPE"}, storage.ErrNotFound},
				{[]string{"CAM-NEW", "TOK-2"}, storage.ErrConflict},
			} {
				got, err := e.s.ExportSeeds(e.ctx, tt.serials, exportAudit(tt.serials...))
				mustBe(t, err, tt.is, fmt.Sprint(tt.serials))
				if got != nil {
					t.Fatalf("%v: refused, yet returned %+v", tt.serials, got)
				}
			}
			if got := e.auditActions(t, "TOK-2"); len(got) != 0 {
				t.Fatalf("refused exports wrote audit rows: %v", got)
			}
			got, err := e.s.ExportSeeds(e.ctx, []string{"TOK-2", "CAM-1"}, exportAudit("TOK-2", "CAM-1"))
			must(t, err, "export")
			if len(got) != 2 || got[0].Camera.Serial != "TOK-2" || got[1].Camera.Serial != "CAM-1" || got[0].Camera.State != model.StateProvisioned {
				t.Fatalf("exported %+v, want TOK-2 then CAM-1", got)
			}
			want2 := testSeed(2)
			want2.Version = 1
			sameSeed(t, got[0].Seed, want2, "TOK-2")
			want1 := testSeed(1)
			want1.Version = 1
			sameSeed(t, got[1].Seed, want1, "CAM-1 (the proven seed, not the rotation in flight)")
			if a := e.auditActions(t, "CAM-1"); len(a) != len(before)+1 || a[0] != "camera.export" {
				t.Fatalf("CAM-1 audit %v, want one camera.export more than %v", a, before)
			}
		}},
	}
}

// rotateBegun starts a rotation of serial to seed s, left unproven.
func (e *env) rotateBegun(t *testing.T, serial string, s device.Seed) {
	t.Helper()
	e.startOp(t, serial, model.OpRotate, &s)
}
