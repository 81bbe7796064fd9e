package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
)

// clockAlert is the drift alert threshold of the clock cases.
const clockAlert = 20 * time.Second

// report is a clock report of serial with counter seq, offset off (ms)
// and round trip rtt (ms), received at T0+at.
func report(serial string, seq uint64, off, rtt int64, at time.Duration) model.ClockReport {
	return model.ClockReport{Serial: serial, Seq: seq, Offset: time.Duration(off) * time.Millisecond,
		RTT: time.Duration(rtt) * time.Millisecond, At: T0.Add(at)}
}

// clockCases are the cameras' clock reports: a replayed or older report
// changes nothing, the drifting and mismatch flags change once per
// episode, a clock challenge is answered once and only with its nonce,
// and the sign-in's read carries the clock.
func clockCases() []testCase {
	return []testCase{
		{"RecordKeepsOnlyNewerReports", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			if _, ok, err := e.s.RecordClock(e.ctx, report("CAM-9", 1, 0, 5, 0), clockAlert); err != nil || ok {
				t.Fatalf("report of an unknown camera: recorded %v, %v", ok, err)
			}
			if _, err := e.s.CameraClock(e.ctx, "CAM-1"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("clock of a camera that never reported: %v, want ErrNotFound", err)
			}
			steps := []struct {
				r      model.ClockReport
				record bool
			}{
				{report("CAM-1", 10, 1500, 12, 0), true},
				{report("CAM-1", 10, -90000, 1, time.Second), false},    // replayed counter
				{report("CAM-1", 9, -90000, 1, 2*time.Second), false},   // older counter
				{report("CAM-1", 11, -2750, 40, 3*time.Second), true},   // newer
				{report("CAM-1", 1<<40, 61000, 3, 4*time.Second), true}, // a counter far ahead (a camera restarted)
				{report("CAM-1", 1<<40-1, 0, 3, 5*time.Second), false},
			}
			want := steps[0].r
			for i, st := range steps {
				rec, ok, err := e.s.RecordClock(e.ctx, st.r, clockAlert)
				must(t, err, fmt.Sprintf("report %d", i))
				if ok != st.record {
					t.Fatalf("report %d (seq %d): recorded %v, want %v", i, st.r.Seq, ok, st.record)
				}
				if ok {
					want = st.r
					if rec.Seq != want.Seq || rec.Offset != want.Offset || rec.RTT != want.RTT || !rec.At.Equal(want.At) {
						t.Fatalf("report %d: returned %+v, want %+v", i, rec, want)
					}
				}
				got, err := e.s.CameraClock(e.ctx, "CAM-1")
				must(t, err, "read clock")
				if got.Serial != "CAM-1" || got.Seq != want.Seq || got.Offset != want.Offset || got.RTT != want.RTT || !got.At.Equal(want.At) {
					t.Fatalf("after report %d: %+v, want %+v", i, got, want)
				}
			}
			all, err := e.s.CameraClocks(e.ctx)
			must(t, err, "all clocks")
			if len(all) != 1 || all[0].Seq != 1<<40 {
				t.Fatalf("all clocks %+v", all)
			}
		}},
		{"DriftingEpisodes", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			e.addCamera(t, "CAM-2")
			steps := []struct {
				off   int64 // ms
				since time.Duration
				drift bool
			}{
				{5000, 0, false},
				{-25000, 2 * time.Minute, true}, // begins: since is this report
				{30000, 2 * time.Minute, true},  // goes on: since kept
				{20000, 0, false},               // at the threshold: within it
				{21000, 8 * time.Minute, true},  // a new episode
			}
			for i, st := range steps {
				at := time.Duration(i*2) * time.Minute
				rec, ok, err := e.s.RecordClock(e.ctx, report("CAM-1", uint64(i+1), st.off, 4, at), clockAlert)
				if err != nil || !ok {
					t.Fatalf("report %d: %v %v", i, ok, err)
				}
				if rec.Drifting() != st.drift || (st.drift && !rec.DriftingSince.Equal(T0.Add(st.since))) {
					t.Fatalf("report %d (offset %d ms): drifting since %v, want %v since +%v", i, st.off, rec.DriftingSince, st.drift, st.since)
				}
			}
			rec, _, err := e.s.RecordClock(e.ctx, report("CAM-2", 1, 100, 4, 0), clockAlert)
			must(t, err, "CAM-2")
			if rec.Drifting() {
				t.Fatal("CAM-2 drifting")
			}
			all, err := e.s.CameraClocks(e.ctx)
			must(t, err, "all clocks")
			if len(all) != 2 || all[0].Serial != "CAM-1" || !all[0].Drifting() || all[1].Serial != "CAM-2" || all[1].Drifting() {
				t.Fatalf("all clocks %+v", all)
			}
			// A page's cameras: those with a record, by serial.
			some, err := e.s.CameraClocksOf(e.ctx, []string{"CAM-2", "CAM-9", "CAM-1", "CAM-2"})
			must(t, err, "clocks of a page")
			if len(some) != 2 || some[0].Serial != "CAM-1" || !some[0].Drifting() || some[1].Serial != "CAM-2" {
				t.Fatalf("clocks of a page %+v", some)
			}
			if none, err := e.s.CameraClocksOf(e.ctx, nil); err != nil || len(none) != 0 {
				t.Fatalf("clocks of no camera: %+v %v", none, err)
			}
			if _, err := e.s.CameraClocksOf(e.ctx, make([]string, model.MaxPageSize+1)); err == nil {
				t.Fatalf("clocks of %d cameras at once: no error", model.MaxPageSize+1)
			}
		}},
		{"MismatchChangesOnce", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			if ch, err := e.s.SetClockMismatch(e.ctx, "CAM-1", true, T0); err != nil || ch {
				t.Fatalf("mismatch of a camera that never reported: changed %v, %v", ch, err)
			}
			_, _, err := e.s.RecordClock(e.ctx, report("CAM-1", 1, 0, 4, 0), clockAlert)
			must(t, err, "report")
			changed := make([]bool, 16)
			errs := make([]error, 16)
			together.Run(16, func(i int) {
				changed[i], errs[i] = e.s.SetClockMismatch(e.ctx, "CAM-1", true, T0.Add(time.Minute))
			})
			n := 0
			for i := range changed {
				must(t, errs[i], "set mismatch")
				if changed[i] {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("16 calls at once flagged the mismatch %d times, want once", n)
			}
			got, err := e.s.CameraClock(e.ctx, "CAM-1")
			must(t, err, "read")
			if !got.Mismatch() || !got.MismatchSince.Equal(T0.Add(time.Minute)) {
				t.Fatalf("mismatch %v, want since +1m", got.MismatchSince)
			}
			// A newer report keeps the flag: only codes clear it.
			_, _, err = e.s.RecordClock(e.ctx, report("CAM-1", 2, 0, 4, 2*time.Minute), clockAlert)
			must(t, err, "report")
			if got, _ := e.s.CameraClock(e.ctx, "CAM-1"); !got.Mismatch() {
				t.Fatal("a report cleared the mismatch")
			}
			if ch, err := e.s.SetClockMismatch(e.ctx, "CAM-1", false, T0.Add(3*time.Minute)); err != nil || !ch {
				t.Fatalf("clear: changed %v, %v", ch, err)
			}
			if ch, err := e.s.SetClockMismatch(e.ctx, "CAM-1", false, T0.Add(4*time.Minute)); err != nil || ch {
				t.Fatalf("clear again: changed %v, %v", ch, err)
			}
			if got, _ := e.s.CameraClock(e.ctx, "CAM-1"); got.Mismatch() {
				t.Fatal("mismatch not cleared")
			}
		}},
		{"ReportsRace", func(t *testing.T, e *env) {
			// 16 reports at once with counters 1..16, then 16 copies of
			// one newer report: the newest counter wins, one copy records.
			e.addCamera(t, "CAM-1")
			errs := make([]error, 16)
			together.Run(16, func(i int) {
				_, _, errs[i] = e.s.RecordClock(e.ctx, report("CAM-1", uint64(i+1), int64(i), 4, time.Duration(i)*time.Millisecond), clockAlert)
			})
			for _, err := range errs {
				must(t, err, "report")
			}
			got, err := e.s.CameraClock(e.ctx, "CAM-1")
			must(t, err, "read")
			if got.Seq != 16 || got.Offset != 15*time.Millisecond {
				t.Fatalf("after 16 reports at once: %+v, want seq 16", got)
			}
			recorded := make([]bool, 16)
			together.Run(16, func(i int) {
				_, recorded[i], errs[i] = e.s.RecordClock(e.ctx, report("CAM-1", 17, 99, 4, time.Second), clockAlert)
			})
			n := 0
			for i := range recorded {
				must(t, errs[i], "replayed report")
				if recorded[i] {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("one report delivered 16 times at once was recorded %d times, want once", n)
			}
		}},
		{"ChallengeAnsweredOnce", func(t *testing.T, e *env) {
			// One outstanding challenge per camera: a newer replaces an
			// older, only its own camera's report answers it, once.
			e.addCamera(t, "CAM-1")
			e.addCamera(t, "CAM-2")
			nonce := func(b byte) []byte { return []byte{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, b} }
			mustBe(t, e.s.ChallengeClock(e.ctx, model.ClockChallenge{Serial: "CAM-9", Nonce: nonce(9), Sent: T0}), storage.ErrNotFound, "challenge of an unknown camera")
			if _, _, ok, err := e.s.AnswerClock(e.ctx, "CAM-1", nonce(1)); err != nil || ok {
				t.Fatalf("answer with no challenge outstanding: %v %v", ok, err)
			}
			must(t, e.s.ChallengeClock(e.ctx, model.ClockChallenge{Serial: "CAM-1", Nonce: nonce(1), Sent: T0}), "challenge CAM-1")
			must(t, e.s.ChallengeClock(e.ctx, model.ClockChallenge{Serial: "CAM-2", Nonce: nonce(2), Sent: T0.Add(time.Second)}), "challenge CAM-2")
			if _, _, ok, err := e.s.AnswerClock(e.ctx, "CAM-1", nonce(2)); err != nil || ok {
				t.Fatalf("CAM-1 answering CAM-2's challenge: %v %v", ok, err)
			}
			// A newer challenge replaces the older: its nonce answers nothing.
			must(t, e.s.ChallengeClock(e.ctx, model.ClockChallenge{Serial: "CAM-1", Nonce: nonce(3), Sent: T0.Add(time.Minute + 7*time.Millisecond)}), "challenge CAM-1 again")
			if _, _, ok, err := e.s.AnswerClock(e.ctx, "CAM-1", nonce(1)); err != nil || ok {
				t.Fatalf("answer to the older challenge: %v %v", ok, err)
			}
			// 16 copies of the answer at once: one consumes it.
			answered := make([]bool, 16)
			sent := make([]time.Time, 16)
			errs := make([]error, 16)
			together.Run(16, func(i int) { sent[i], _, answered[i], errs[i] = e.s.AnswerClock(e.ctx, "CAM-1", nonce(3)) })
			n := 0
			for i := range answered {
				must(t, errs[i], "answer")
				if answered[i] {
					n++
					if !sent[i].Equal(T0.Add(time.Minute + 7*time.Millisecond)) {
						t.Fatalf("answered challenge sent %v, want +1m7ms", sent[i])
					}
				}
			}
			if n != 1 {
				t.Fatalf("one challenge answered %d times by 16 copies at once, want once", n)
			}
			if _, _, ok, err := e.s.AnswerClock(e.ctx, "CAM-1", nonce(3)); err != nil || ok {
				t.Fatalf("answer to a consumed challenge: %v %v", ok, err)
			}
			// The other camera's challenge was left alone.
			if at, _, ok, err := e.s.AnswerClock(e.ctx, "CAM-2", nonce(2)); err != nil || !ok || !at.Equal(T0.Add(time.Second)) {
				t.Fatalf("CAM-2's answer: %v %v %v", at, ok, err)
			}
		}},
		{"ChallengeElapsedOnOneClock", func(t *testing.T, e *env) {
			// How long ago a challenge was written is measured on one
			// clock at both ends (the database's; with one process, the
			// store's): never negative, and no more than what passed.
			e.addCamera(t, "CAM-1")
			wall := time.Now()
			must(t, e.s.ChallengeClock(e.ctx, model.ClockChallenge{Serial: "CAM-1", Nonce: []byte("0123456789abcdef"), Sent: e.now()}), "challenge")
			e.clock.Advance(3 * time.Second)
			_, elapsed, ok, err := e.s.AnswerClock(e.ctx, "CAM-1", []byte("0123456789abcdef"))
			if err != nil || !ok || elapsed < 0 || elapsed > max(3*time.Second, time.Since(wall)+time.Second) {
				t.Fatalf("answer: elapsed %v %v %v, want 0 to what passed", elapsed, ok, err)
			}
		}},
		{"PendingCheckCarriesTheClock", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			pending := e.createToken(t, model.TokenPending, "alice", time.Hour)
			pc, err := e.s.PendingCheck(e.ctx, pending)
			must(t, err, "PendingCheck")
			if pc.Camera == nil || pc.Camera.Clock != nil {
				t.Fatalf("camera that never reported: %+v", pc.Camera)
			}
			_, _, err = e.s.RecordClock(e.ctx, report("CAM-1", 3, -95000, 8, 0), clockAlert)
			must(t, err, "report")
			_, err = e.s.SetClockMismatch(e.ctx, "CAM-1", true, T0.Add(time.Second))
			must(t, err, "mismatch")
			pc, err = e.s.PendingCheck(e.ctx, pending)
			must(t, err, "PendingCheck")
			k := pc.Camera.Clock
			if k == nil || k.Serial != "CAM-1" || k.Seq != 3 || k.Offset != -95*time.Second || k.RTT != 8*time.Millisecond ||
				!k.At.Equal(T0) || !k.Drifting() || !k.Mismatch() || !k.MismatchSince.Equal(T0.Add(time.Second)) {
				t.Fatalf("clock in PendingCheck: %+v", k)
			}
		}},
	}
}
