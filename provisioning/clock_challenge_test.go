package provisioning_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
)

// challenge has the server send serial a clock challenge (the fleet's
// agents do not answer: the test does, with the camera's key) and returns
// its nonce.
func challenge(t *testing.T, srv *server.Server, serial string) []byte {
	t.Helper()
	ch, err := srv.Provisioning.ChallengeClock(t.Context(), serial)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Nonce
}

// answer is the report o's camera signs answering the challenge of
// nonce: its next counter, its clock now.
func answer(t *testing.T, o *officer, nonce []byte) []byte {
	t.Helper()
	seq, err := o.st.NextReportSeq()
	if err != nil {
		t.Fatal(err)
	}
	id := o.st.Identity()
	data, err := json.Marshal(provisioning.SignClockReport(id.Key, id.Serial, seq, o.clock.Now(), nonce))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// deliver hands the server a message on serial's status topic, as the
// broker would.
func deliver(srv *server.Server, serial string, data []byte) {
	srv.Provisioning.HandleMessage(context.Background(), "cams/"+serial+"/status", data)
}

// loginVerify signs the officer in with code, once: the status of the
// code's answer.
func loginVerify(t *testing.T, srv *server.Server, o *officer, code string) (int, map[string]any) {
	t.Helper()
	status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": o.user, "password": "pw-" + o.user + "-long"})
	if status != 200 {
		t.Fatalf("login %s: %d %v", o.user, status, body)
	}
	return testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": code})
}

// A broker (which cannot forge a report) holds a genuine signed clock
// report for two hours, then delivers it, hoping the server records an
// offset of −2 h and centres the window there, so that a code
// photographed off the camera two hours earlier signs in (and the
// officer's own current code is refused). The report answered a challenge
// sent two hours before: refused as late, nothing recorded; one held
// while a newer challenge was sent answers no outstanding challenge:
// refused too. The old code stays refused, the officer's current one
// signs in.
func TestHeldClockReportRefused(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, o := signedInCamera(t, db, clk)
		serial := o.st.Identity().Serial
		// T: the camera answers a challenge (the broker keeps the answer)
		// and an onlooker photographs its screen.
		held := answer(t, o, challenge(t, srv, serial))
		oldCode := testenv.ScreenCode(t, o.st, o.clock.Now())
		clk.Add(2 * time.Hour)
		if st, body := loginVerify(t, srv, o, oldCode); st == 200 {
			t.Fatalf("control: a 2-hour-old code accepted without a report: %v", body)
		}
		base := srv.Provisioning.ClockReports()
		deliver(srv, serial, held)
		if n := srv.Provisioning.ClockReports(); n.Late != base.Late+1 || n.Recorded != base.Recorded {
			t.Fatalf("report held 2 h: counted %+v after %+v, want late", n, base)
		}
		// Held while the server sent a newer challenge (the camera came
		// back online): it answers no outstanding challenge.
		older := challenge(t, srv, serial)
		heldAgain := answer(t, o, older)
		challenge(t, srv, serial)
		clk.Add(2 * time.Hour)
		deliver(srv, serial, heldAgain)
		if n := srv.Provisioning.ClockReports(); n.Unchallenged != base.Unchallenged+1 || n.Recorded != base.Recorded {
			t.Fatalf("report answering a replaced challenge: counted %+v after %+v, want unchallenged", n, base)
		}
		if _, err := srv.Store.CameraClock(t.Context(), serial); err == nil {
			t.Fatal("a held report was recorded")
		}
		if st, body := loginVerify(t, srv, o, oldCode); st == 200 {
			t.Fatalf("a 2-hour-old code signed the officer in after the broker delivered held reports: %v", body)
		}
		clk.Add(time.Minute)
		if st, body := signIn(t, srv, o); st != 200 {
			t.Fatalf("the officer's current code: %d %v", st, body)
		}
		// Refused reports are audited once a minute per camera and kind.
		rows := map[string]int{}
		if err := srv.Store.AuditEach(t.Context(), model.AuditFilter{Subject: serial, Action: "camera.clock"}, func(e model.AuditEntry) error {
			rows[e.Result]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if rows["error: answered too late"] != 1 || rows["error: answers no outstanding challenge"] != 1 {
			t.Fatalf("audit of the held reports: %v", rows)
		}
	})
}

// A report is recorded only when it answers its camera's outstanding
// challenge within provisioning.MaxClockDelay of its sending, once: not
// another camera's challenge, not one later than the bound, not twice
// when delivered 16 times at once. The round trip and the offset are the
// server's measure.
func TestClockChallengeRules(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, fleet := telemetryFleet(t, db, clk, 2)
		o, other := fleet[0], fleet[1]
		serial, otherSerial := o.st.Identity().Serial, other.st.Identity().Serial
		clk.Freeze() // round trips to the millisecond: only the test moves the clock
		o.clock.drift(40*time.Second, 0, clk.Now())
		counts := srv.Provisioning.ClockReports
		base := counts()

		// Another camera's challenge: o signs an answer with its nonce.
		theirs := challenge(t, srv, otherSerial)
		challenge(t, srv, serial)
		deliver(srv, serial, answer(t, o, theirs))
		if n := counts(); n.Unchallenged != base.Unchallenged+1 || n.Recorded != base.Recorded {
			t.Fatalf("answer with another camera's nonce: %+v after %+v", n, base)
		}
		// ... which stays the other camera's to answer.
		deliver(srv, otherSerial, answer(t, other, theirs))
		if k, err := srv.Store.CameraClock(t.Context(), otherSerial); err != nil || k.Offset != 0 {
			t.Fatalf("the other camera's answer: %+v %v", k, err)
		}

		// Later than the bound: refused, the challenge spent.
		late := challenge(t, srv, serial)
		clk.Add(provisioning.MaxClockDelay + time.Millisecond)
		deliver(srv, serial, answer(t, o, late))
		if n := counts(); n.Late != base.Late+1 {
			t.Fatalf("answer %v after its challenge: %+v", provisioning.MaxClockDelay+time.Millisecond, n)
		}
		if _, err := srv.Store.CameraClock(t.Context(), serial); err == nil {
			t.Fatal("a late answer was recorded")
		}

		// At the bound: recorded, the round trip the server's, the offset
		// from its midpoint (the camera answered at the end of it, so it
		// seems half the round trip fast: the error a broker can cause).
		at, err := srv.Provisioning.ChallengeClock(t.Context(), serial)
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(provisioning.MaxClockDelay)
		deliver(srv, serial, answer(t, o, at.Nonce))
		k, err := srv.Store.CameraClock(t.Context(), serial)
		if err != nil || k.RTT != provisioning.MaxClockDelay || k.Offset != 40*time.Second+provisioning.MaxClockDelay/2 ||
			!k.At.Equal(at.Sent.Add(provisioning.MaxClockDelay)) {
			t.Fatalf("answer at the bound: %+v %v", k, err)
		}

		// One answer delivered 16 times at once (a broker redelivering):
		// recorded once.
		before := counts()
		clk.Add(time.Second)
		data := answer(t, o, challenge(t, srv, serial))
		together.Run(16, func(int) { deliver(srv, serial, data) })
		if n := counts(); n.Recorded != before.Recorded+1 || n.Unchallenged != before.Unchallenged+15 {
			t.Fatalf("one answer delivered 16 times at once: %+v after %+v, want 1 recorded, 15 unchallenged", n, before)
		}
		if k2, err := srv.Store.CameraClock(t.Context(), serial); err != nil || k2.Seq <= k.Seq || k2.RTT != 0 || k2.Offset != 40*time.Second {
			t.Fatalf("after the 16 copies: %+v %v", k2, err)
		}
		if n := counts(); n.Forged != base.Forged || n.Malformed != base.Malformed {
			t.Fatalf("counted %+v", n)
		}
	})
}

// TestNodeClocksApartRefused: two nodes share the database, and the one
// that sent the challenge runs 90 s ahead of the one that gets the
// answer (and of the camera). A broker holds the camera's prompt answer
// 85 s: by the nodes' clocks the round trip comes out negative, so the
// report is refused (as late), not taken with a round trip of 0 and an
// offset of −85 s that would let a code photographed 85 s earlier pass.
func TestNodeClocksApartRefused(t *testing.T) {
	backends(t, func(t *testing.T, db string) {
		clk := &testclock.Shift{}
		srv, o := signedInCamera(t, db, clk)
		serial := o.st.Identity().Serial
		clk.Freeze()
		const skew = 90 * time.Second
		nonce := make([]byte, provisioning.ClockNonceBytes)
		nonce[0] = 7
		// What the node 90 s ahead writes when it sends the challenge.
		if err := srv.Store.ChallengeClock(t.Context(), model.ClockChallenge{Serial: serial, Nonce: nonce,
			Sent: clk.Now().Add(skew).Truncate(time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		held := answer(t, o, nonce) // the camera (on time) answers at once
		oldCode := testenv.ScreenCode(t, o.st, o.clock.Now())
		clk.Add(85 * time.Second)
		before := srv.Provisioning.ClockReports()
		deliver(srv, serial, held)
		if n := srv.Provisioning.ClockReports(); n.Late != before.Late+1 || n.Recorded != before.Recorded {
			t.Fatalf("report across nodes 90 s apart: %+v after %+v, want refused as late", n, before)
		}
		if st, _ := loginVerify(t, srv, o, oldCode); st == 200 {
			t.Fatal("a code photographed 85 s earlier signed in")
		}
	})
}

// signedInCamera is a server with one camera whose officer signed in
// once with it, the clock moved 5 minutes on since.
func signedInCamera(t *testing.T, db string, clk *testclock.Shift) (*server.Server, *officer) {
	t.Helper()
	srv, fleet := telemetryFleet(t, db, clk, 1)
	o := fleet[0]
	if st, body := signIn(t, srv, o); st != 200 {
		t.Fatalf("first sign-in: %d %v", st, body)
	}
	clk.Add(5 * time.Minute)
	return srv, o
}
