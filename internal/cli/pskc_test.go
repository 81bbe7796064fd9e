package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/provisioning/pskc"
)

// The RFC 6030 Figure 6 pre-shared key and the secret of its examples
// (RFC 4226's "12345678901234567890").
var (
	pskcRFCKey    = "12345678901234567890123456789012"
	pskcRFCSecret = []byte("12345678901234567890")
)

// pskcT is the server's (manual) clock in the sign-in tests.
var pskcT = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// pskcServer is a server on a manual clock at pskcT with officer dave
// (no camera), and the env and flags its admin commands need.
func pskcServer(t *testing.T, now func() time.Time) (*server.Server, Env, []string) {
	t.Helper()
	return pskcServerIn(t, t.TempDir(), now)
}

// pskcServerIn is pskcServer with its data in dataDir.
func pskcServerIn(t *testing.T, dataDir string, now func() time.Time) (*server.Server, Env, []string) {
	t.Helper()
	srv := testenv.Server(t, dataDir, func(c *server.Config) { c.Now = now })
	testenv.User(t, srv, "dave", "pw-dave-long")
	env := Env{Getenv: func(k string) string {
		if k == "CAMOTP_ADMIN_TOKEN" {
			return srv.AdminToken
		}
		return ""
	}}
	return srv, env, []string{"admin", "--server", "http://" + srv.HTTPAddr()}
}

// writeFile writes data to a new 0600 file in dir.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// totpKey is a factory TOTP key of serial in a PSKC document.
func totpKey(serial, camModel string, secret []byte) pskc.Key {
	t0, step := int64(0), int64(30)
	return pskc.Key{Manufacturer: "Acme Optics", SerialNo: serial, Model: camModel, ID: serial, Algorithm: pskc.AlgorithmTOTP,
		Suite: "HMAC-SHA1", Digits: 6, Encoding: "DECIMAL", Secret: secret, Time: &t0, TimeInterval: &step}
}

// oathCode is the TOTP code of secret (SHA1, 6 digits, 30 s) at t, as
// oathtool computes it (pquerna/otp when oathtool is not installed).
func oathCode(t *testing.T, secret []byte, at time.Time) string {
	t.Helper()
	b32 := device.DefaultSeed(secret).Base32()
	if path, err := exec.LookPath("oathtool"); err == nil {
		out, err := exec.Command(path, "--totp", "-b", b32, "--now", at.UTC().Format("2006-01-02 15:04:05 UTC")).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	t.Log("oathtool not installed; the code comes from pquerna/otp")
	code, err := totp.GenerateCodeCustom(b32, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// signIn signs user in with the password and code: the HTTP status of
// the code's check.
func signIn(t *testing.T, srv *server.Server, user, code string) int {
	t.Helper()
	status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": "pw-" + user + "-long"})
	if status != http.StatusOK || body["authenticator"] != "bodycam" {
		t.Fatalf("login %s: %d %v", user, status, body)
	}
	status, body = testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": code})
	if status == http.StatusOK && body["sessionToken"] == nil {
		t.Fatalf("verify: %d %v without a session", status, body)
	}
	return status
}

// auditOf is the audit rows of subject, newest first.
func auditOf(t *testing.T, srv *server.Server, subject string) []model.AuditEntry {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.HTTPAddr()+"/api/v1/admin/audit?subject="+subject, nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []model.AuditEntry
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestPSKCImportSignsIn: a factory file holding the RFC's secret as a TOTP
// key, encrypted with the RFC's pre-shared key, imported with 'admin
// camera import': the camera is provisioned at once, the code oathtool
// computes from the secret signs its officer in at the first try, the
// seed is nowhere in the data directory in the clear nor in the audit,
// and a rotation over MQTT is refused, saying why, until the camera has an
// identity key.
func TestPSKCImportSignsIn(t *testing.T) {
	clk := testclock.NewManual(pskcT)
	dataDir := t.TempDir()
	srv, env, admin := pskcServerIn(t, dataDir, clk.Now)
	dir := t.TempDir()
	other := make([]byte, 20)
	rand.Read(other)
	doc, err := pskc.Marshal([]pskc.Key{totpKey("TOK-RFC", "workforce", pskcRFCSecret), totpKey("TOK-2", "body3", other)},
		pskc.WriteOptions{Key: mustHexKey(t, pskcRFCKey)})
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "factory.pskcxml", doc)
	keyFile := writeFile(t, dir, "psk.hex", []byte(pskcRFCKey+"\n"))

	out, errOut, code := runMain(t, env, append(admin, "camera", "import", "--pskc", file, "--key-file", keyFile)...)
	if code != 0 || !strings.Contains(out, "2 cameras imported from a pre-shared-key PSKC file") ||
		!strings.Contains(errOut, "2 cameras have no MQTT identity key") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	for sn, m := range map[string]device.Model{"TOK-RFC": device.Workforce, "TOK-2": device.Body3} {
		cam, err := srv.Store.Camera(t.Context(), sn)
		if err != nil || cam.State != model.StateProvisioned || cam.Version != 1 || cam.Model != m || cam.PublicKey != "" {
			t.Fatalf("%s: %+v %v", sn, cam, err)
		}
	}
	testenv.Assign(t, srv, "TOK-RFC", "dave")
	if status := signIn(t, srv, "dave", oathCode(t, pskcRFCSecret, clk.Now())); status != http.StatusOK {
		t.Fatalf("sign-in with the imported token's code: %d", status)
	}
	// Not the other camera's code.
	clk.Advance(time.Minute)
	if status := signIn(t, srv, "dave", oathCode(t, other, clk.Now())); status == http.StatusOK {
		t.Fatal("TOK-2's code signed dave in")
	}

	// Secrets at rest: sealed, as every seed.
	files, _ := filepath.Glob(filepath.Join(dataDir, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, s := range [][]byte{pskcRFCSecret, other, []byte(device.DefaultSeed(other).Base32())} {
			if bytes.Contains(data, s) {
				t.Errorf("%s holds a seed in the clear", f)
			}
		}
	}
	rows := auditOf(t, srv, "TOK-RFC")
	found := false
	for _, r := range rows {
		if r.Action == "camera.import" && r.Result == "ok" && strings.Contains(r.Detail, "pskc key package 1, pre-shared-key, no identity key") {
			found = true
		}
		if strings.Contains(fmt.Sprint(r), string(pskcRFCSecret)) || strings.Contains(fmt.Sprint(r), device.DefaultSeed(pskcRFCSecret).Base32()) {
			t.Errorf("audit row holds the seed: %+v", r)
		}
	}
	if !found {
		t.Errorf("no camera.import audit row for TOK-RFC: %+v", rows)
	}

	_, errOut, code = runMain(t, env, append(admin, "camera", "rotate", "TOK-RFC", "--wait", "0")...)
	if code != 1 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "has no MQTT identity key") || !strings.Contains(errOut, "set-key TOK-RFC") {
		t.Fatalf("rotate without identity: exit %d: %s", code, errOut)
	}
	if cam, _ := srv.Store.Camera(t.Context(), "TOK-RFC"); cam.PendingOp != "" || cam.Version != 1 {
		t.Fatalf("refused rotation changed the camera: %+v", cam)
	}
	// The refused rotation left its seed: dave still signs in.
	clk.Advance(time.Minute)
	if status := signIn(t, srv, "dave", oathCode(t, pskcRFCSecret, clk.Now())); status != http.StatusOK {
		t.Fatalf("sign-in after the refused rotation: %d", status)
	}
}

func mustHexKey(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPSKCImportRefusals: what import refuses, saying which key package
// and why, without registering anything.
func TestPSKCImportRefusals(t *testing.T) {
	srv, env, admin := pskcServer(t, nil)
	dir := t.TempDir()
	key := mustHexKey(t, pskcRFCKey)
	keyFile := writeFile(t, dir, "psk.hex", []byte(pskcRFCKey))
	wrongKey := writeFile(t, dir, "wrong.hex", []byte(strings.Repeat("ab", 16)))
	shortKey := writeFile(t, dir, "short.hex", []byte("abcd"))
	pwFile := writeFile(t, dir, "pw", []byte("qwerty\n"))
	enc := func(keys ...pskc.Key) string {
		doc, err := pskc.Marshal(keys, pskc.WriteOptions{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, fmt.Sprintf("f%d.pskcxml", len(keys))+keys[0].SerialNo, doc)
	}
	secret := bytes.Repeat([]byte{7}, 20)
	plain := strings.Replace(string(mustRead(t, "../../provisioning/pskc/testdata/rfc6030-figure3.pskcxml")), "pskc:hotp", "pskc:totp", 1)
	plainFile := writeFile(t, dir, "plain.pskcxml", []byte(strings.Replace(plain, "<SerialNo>987654321</SerialNo>", "<SerialNo>PLAIN-1</SerialNo><Model>body4</Model>", 1)))
	hotp := totpKey("HOTP-1", "body4", secret)
	hotp.Algorithm = pskc.AlgorithmHOTP
	t0 := int64(1000)
	shifted := totpKey("T0-1", "body4", secret)
	shifted.Time = &t0
	testenv.Camera(t, srv, "CAM-EXISTS", device.Body4)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"camera", "import"}, 2, "--pskc FILE is required"},
		{"both credentials", []string{"camera", "import", "--pskc", enc(totpKey("X-1", "body4", secret)), "--key-file", keyFile, "--password-file", pwFile}, 2, "not both"},
		{"key not hex", []string{"camera", "import", "--pskc", enc(totpKey("X-1", "body4", secret)), "--key-file", shortKey}, 1, "want 16, 24 or 32 bytes in hex"},
		{"no key", []string{"camera", "import", "--pskc", enc(totpKey("X-1", "body4", secret))}, 1, "key package 1 (serial \"X-1\", key \"X-1\"): Secret: document is encrypted with a pre-shared key: give the key"},
		{"wrong key", []string{"camera", "import", "--pskc", enc(totpKey("X-1", "body4", secret)), "--key-file", wrongKey}, 1, "MACKey does not decrypt"},
		{"password for a key", []string{"camera", "import", "--pskc", enc(totpKey("X-1", "body4", secret)), "--password-file", pwFile}, 1, "give the key"},
		{"plaintext", []string{"camera", "import", "--pskc", plainFile}, 1, "plain text refused"},
		{"hotp", []string{"camera", "import", "--pskc", enc(totpKey("OK-1", "body4", secret), hotp), "--key-file", keyFile}, 1, `key package 2 (serial "HOTP-1", key "HOTP-1"): algorithm "urn:ietf:params:xml:ns:keyprov:pskc:hotp": camotp verifies TOTP codes only`},
		{"T0", []string{"camera", "import", "--pskc", enc(shifted), "--key-file", keyFile}, 1, "T0"},
		{"unknown model", []string{"camera", "import", "--pskc", enc(totpKey("M-1", "VX-9000", secret)), "--key-file", keyFile}, 1, `DeviceInfo/Model "VX-9000" is not a camotp model`},
		{"bad serial", []string{"camera", "import", "--pskc", enc(totpKey("bad serial", "body4", secret)), "--key-file", keyFile}, 1, "invalid serial"},
		{"short secret", []string{"camera", "import", "--pskc", enc(totpKey("S-1", "body4", secret[:8])), "--key-file", keyFile}, 1, "seed secret must be 10 to 128 bytes"},
		{"serial twice", []string{"camera", "import", "--pskc", enc(totpKey("D-1", "body4", secret), totpKey("D-1", "body4", secret)), "--key-file", keyFile}, 1, "key package 2 (serial \"D-1\", key \"D-1\"): serial D-1 is in key package 1 already"},
		{"serial known", []string{"camera", "import", "--pskc", enc(totpKey("NEW-1", "body4", secret), totpKey("CAM-EXISTS", "body4", secret)), "--key-file", keyFile}, 1, "409: key package 2 (serial \"CAM-EXISTS\"): camera CAM-EXISTS: already exists"},
		{"public key of another", []string{"camera", "import", "--pskc", enc(totpKey("P-1", "body4", secret)), "--key-file", keyFile, "--public-keys", writeFile(t, dir, "keys.csv", []byte("P-2,cam1:xyz\n"))}, 1, "P-2"},
		{"bad public key", []string{"camera", "import", "--pskc", enc(totpKey("P-1", "body4", secret)), "--key-file", keyFile, "--public-keys", writeFile(t, dir, "keys2.csv", []byte("# serial,key\nP-1,cam1:xyz\n"))}, 1, "public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runMain(t, env, append(admin, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", code, tt.code, errOut, tt.want)
			}
		})
	}
	cams, err := srv.Store.Cameras(t.Context())
	if err != nil || len(cams) != 1 {
		t.Fatalf("refused imports registered cameras: %+v %v", cams, err)
	}
	// Allowed, the plain file goes in.
	if out, errOut, code := runMain(t, env, append(admin, "camera", "import", "--pskc", plainFile, "--allow-plaintext")...); code != 0 || !strings.Contains(out, "camera PLAIN-1 (body4) imported") {
		t.Fatalf("plaintext allowed: exit %d %s %s", code, out, errOut)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPSKCParallelImports: the same file imported by admins at once (the
// requests released together) goes in once, whole: one 201, every other
// request 409 (or 429, past provisioning.PSKCSlots running at once), and
// the cameras hold the file's seeds.
func TestPSKCParallelImports(t *testing.T) {
	srv, _, _ := pskcServer(t, nil)
	var keys []pskc.Key
	for i := range 20 {
		keys = append(keys, totpKey(fmt.Sprintf("PAR-%02d", i), "body4", bytes.Repeat([]byte{byte(i + 1)}, 20)))
	}
	doc, err := pskc.Marshal(keys, pskc.WriteOptions{Password: "parallel", Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	codes := make([]int, n)
	together.Run(n, func(i int) {
		codes[i], _ = testenv.API(t, srv, srv.AdminToken, "POST", provisioning.PSKCImportPath, provisioning.PSKCImportRequest{PSKC: doc, Password: "parallel"})
	})
	won := 0
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			won++
		case http.StatusConflict, http.StatusTooManyRequests:
		default:
			t.Errorf("request %d: %d", i, c)
		}
	}
	if won != 1 {
		t.Fatalf("%d imports succeeded (%v), want 1", won, codes)
	}
	cams, err := srv.Store.Cameras(t.Context())
	if err != nil || len(cams) != len(keys) {
		t.Fatalf("%d cameras %v, want %d", len(cams), err, len(keys))
	}
	for i, k := range keys {
		seed, err := srv.Store.ActiveSeed(t.Context(), k.SerialNo)
		if err != nil || !bytes.Equal(seed.Secret, k.Secret) {
			t.Fatalf("camera %d: %v, seed %x", i, err, seed.Secret)
		}
	}
}

// TestPSKCPython: files python-pskc writes (pre-shared key, password)
// import with 'admin camera import' and their codes sign in; what 'admin
// camera export' writes (password, AES-256 key; 0600, never over an
// existing file) python-pskc reads back to the same secrets; every export
// is audited without the seed.
func TestPSKCPython(t *testing.T) {
	py := testenv.PythonPSKC(t)
	clk := testclock.NewManual(pskcT)
	srv, env, admin := pskcServer(t, clk.Now)
	dir := t.TempDir()
	psk := make([]byte, 16)
	rand.Read(psk)
	keyFile := writeFile(t, dir, "psk.hex", []byte(hex.EncodeToString(psk)))
	pwFile := writeFile(t, dir, "pw", []byte("factory pass phrase\n"))
	secrets := map[string][]byte{}
	byFile := map[string]map[string][]byte{"PY-A": {}, "PY-B": {}}
	for i := range 4 {
		s := make([]byte, 20)
		rand.Read(s)
		sn := fmt.Sprintf("PY-%c%d", 'A'+i%2, i)
		secrets[sn], byFile[sn[:4]][sn] = s, s
	}
	pskFile, pwDoc := filepath.Join(dir, "a.pskcxml"), filepath.Join(dir, "b.pskcxml")
	testenv.PythonWritePSKC(t, py, "psk", pskFile, hex.EncodeToString(psk), "body4", byFile["PY-A"])
	testenv.PythonWritePSKC(t, py, "password", pwDoc, "factory pass phrase", "vendor-x", byFile["PY-B"])
	for _, args := range [][]string{
		{"camera", "import", "--pskc", pskFile, "--key-file", keyFile},
		{"camera", "import", "--pskc", pwDoc, "--password-file", pwFile, "--model", "body3"},
	} {
		if out, errOut, code := runMain(t, env, append(admin, args...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	for sn := range secrets {
		cam, err := srv.Store.Camera(t.Context(), sn)
		want := map[string]device.Model{"PY-A": device.Body4, "PY-B": device.Body3}[sn[:4]]
		if err != nil || cam.State != model.StateProvisioned || cam.Model != want {
			t.Fatalf("%s: %+v %v", sn, cam, err)
		}
	}
	testenv.Assign(t, srv, "PY-B1", "dave")
	if status := signIn(t, srv, "dave", oathCode(t, secrets["PY-B1"], clk.Now())); status != http.StatusOK {
		t.Fatalf("sign-in with the code of a python-pskc token: %d", status)
	}

	k32 := make([]byte, 32)
	rand.Read(k32)
	exportKey := writeFile(t, dir, "export.hex", []byte(hex.EncodeToString(k32)))
	exportPW := writeFile(t, dir, "export-pw", []byte("migration pass phrase"))
	for _, tt := range []struct {
		name, mode, cred string
		args             []string
		serials          []string
	}{
		{"password", "password", "migration pass phrase", []string{"--password-file", exportPW, "--iterations", "5000", "PY-A0", "PY-B1"}, []string{"PY-A0", "PY-B1"}},
		{"key", "psk", hex.EncodeToString(k32), []string{"--key-file", exportKey}, []string{"PY-A0", "PY-A2", "PY-B1", "PY-B3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "export-"+tt.name+".pskcxml")
			out, errOut, code := runMain(t, env, append(append(admin, "camera", "export", "--pskc", file), tt.args...)...)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("%d camera seeds exported", len(tt.serials))) {
				t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("export file: %v %v, want mode 0600", fi, err)
			}
			got, err := testenv.PythonReadPSKC(t, py, tt.mode, file, tt.cred)
			if err != nil {
				t.Fatal(err)
			}
			var serials []string
			for _, k := range got {
				serials = append(serials, k.Serial)
				if k.Secret != hex.EncodeToString(secrets[k.Serial]) || k.Algorithm != pskc.AlgorithmTOTP || k.Digits != 6 || k.Interval != 30 || k.Suite != "HMAC-SHA1" {
					t.Errorf("python-pskc read %+v, want secret %x", k, secrets[k.Serial])
				}
			}
			if fmt.Sprint(serials) != fmt.Sprint(tt.serials) {
				t.Errorf("exported %v, want %v", serials, tt.serials)
			}
			// Never over an existing file.
			before := mustRead(t, file)
			if _, errOut, code := runMain(t, env, append(append(admin, "camera", "export", "--pskc", file), tt.args...)...); code != 1 || !strings.Contains(errOut, "exists") {
				t.Fatalf("export over a file: exit %d %s", code, errOut)
			}
			if !bytes.Equal(before, mustRead(t, file)) {
				t.Fatal("the existing file changed")
			}
		})
	}
	rows := auditOf(t, srv, "PY-A0")
	var exports []string
	for _, r := range rows {
		if r.Action == "camera.export" {
			exports = append(exports, r.Result+" "+r.Detail)
		}
		if strings.Contains(fmt.Sprint(r), hex.EncodeToString(secrets["PY-A0"])) || strings.Contains(fmt.Sprint(r), device.DefaultSeed(secrets["PY-A0"]).Base32()) {
			t.Errorf("audit row holds the seed: %+v", r)
		}
	}
	if fmt.Sprint(exports) != "[ok pskc, pre-shared-key ok pskc, password]" {
		t.Errorf("export audit rows of PY-A0: %v", exports)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"camera", "export", "--pskc", filepath.Join(dir, "x1")}, 2, "never exported in plain text"},
		{[]string{"camera", "export", "--pskc", filepath.Join(dir, "x2"), "--key-file", exportKey, "NOPE-1"}, 1, "404"},
		{[]string{"camera", "export", "--pskc", filepath.Join(dir, "x3"), "--password-file", exportPW, "--iterations", "9999999"}, 1, "iterations must be"},
	} {
		if _, errOut, code := runMain(t, env, append(admin, tt.args...)...); code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tt.args, code, errOut, tt.code, tt.want)
		}
		if _, err := os.Stat(tt.args[3]); err == nil {
			t.Errorf("%v left a file", tt.args)
		}
	}
	// A camera without an active seed is not exported.
	testenv.Camera(t, srv, "CAM-NEW", device.Body4)
	if _, errOut, code := runMain(t, env, append(admin, "camera", "export", "--pskc", filepath.Join(dir, "x4"), "--key-file", exportKey, "CAM-NEW")...); code != 1 || !strings.Contains(errOut, "CAM-NEW has no active seed (state registered)") {
		t.Errorf("export of a registered camera: exit %d %q", code, errOut)
	}
}

// TestPSKCIdentityThenRotate: an imported camera with an identity key
// (given in the --public-keys file, or registered later with set-key)
// rotates over MQTT like any other: the real camera proves the new seed;
// set-key never replaces a key.
func TestPSKCIdentityThenRotate(t *testing.T) {
	srv, env, admin := pskcServer(t, nil)
	dir := t.TempDir()
	states := map[string]*device.State{}
	var keys []pskc.Key
	for _, sn := range []string{"CAM-CSV", "CAM-LATE"} {
		st, err := device.InitState(filepath.Join(dir, sn), sn, device.Body4)
		if err != nil {
			t.Fatal(err)
		}
		states[sn] = st
		keys = append(keys, totpKey(sn, "body4", bytes.Repeat([]byte(sn[:4]), 5)))
	}
	doc, err := pskc.Marshal(keys, pskc.WriteOptions{Key: mustHexKey(t, pskcRFCKey)})
	if err != nil {
		t.Fatal(err)
	}
	csv := "# serial,publicKey\nCAM-CSV," + states["CAM-CSV"].Identity().Public().PublicKey + "\n"
	if out, errOut, code := runMain(t, env, append(admin, "camera", "import", "--pskc", writeFile(t, dir, "f.pskcxml", doc),
		"--key-file", writeFile(t, dir, "k", []byte(pskcRFCKey)), "--public-keys", writeFile(t, dir, "keys.csv", []byte(csv)))...); code != 0 ||
		!strings.Contains(errOut, "1 cameras have no MQTT identity key") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if status, body := testenv.API(t, srv, srv.AdminToken, "POST", "/api/v1/admin/cameras/CAM-LATE/wipe", nil); status != http.StatusConflict ||
		!strings.Contains(fmt.Sprint(body["error"]), "no MQTT identity key") {
		t.Fatalf("wipe without identity: %d %v", status, body)
	}
	pub := states["CAM-LATE"].Identity().Public().PublicKey
	if out, errOut, code := runMain(t, env, append(admin, "camera", "set-key", "CAM-LATE", "--public-key", pub)...); code != 0 {
		t.Fatalf("set-key: exit %d %s%s", code, out, errOut)
	}
	if _, errOut, code := runMain(t, env, append(admin, "camera", "set-key", "CAM-CSV", "--public-key", pub)...); code != 1 || !strings.Contains(errOut, "409") {
		t.Fatalf("set-key over a key: exit %d %s", code, errOut)
	}
	if cam, _ := srv.Store.Camera(t.Context(), "CAM-CSV"); cam.PublicKey != states["CAM-CSV"].Identity().Public().PublicKey {
		t.Fatalf("CAM-CSV key replaced: %q", cam.PublicKey)
	}
	for sn, st := range states {
		testenv.Agent(t, st, "tcp://"+srv.MQTTAddr())
		v := testenv.Op(t, srv, sn, "rotate")
		if v != 2 {
			t.Fatalf("%s: rotate version %d, want 2", sn, v)
		}
		testenv.WaitCamera(t, srv.Store, sn, model.StateProvisioned, 2)
		held, err := st.Seed()
		if err != nil {
			t.Fatal(err)
		}
		active, err := srv.Store.ActiveSeed(t.Context(), sn)
		if err != nil || !bytes.Equal(active.Secret, held.Secret) || bytes.Equal(active.Secret, bytes.Repeat([]byte(sn[:4]), 5)) {
			t.Fatalf("%s: active seed %x %v, camera holds %x", sn, active.Secret, err, held.Secret)
		}
	}
}

// BenchmarkPSKCImport10k imports pskc.MaxKeys cameras from one file
// encrypted with a pre-shared key through 'admin camera import' into a
// real server (SQLite; PostgreSQL too when CAMOTP_TEST_POSTGRES is set),
// each iteration into a fresh server; export-ms is the export of them all
// with 'admin camera export'.
func BenchmarkPSKCImport10k(b *testing.B) {
	var keys []pskc.Key
	for i := range pskc.MaxKeys {
		keys = append(keys, totpKey(fmt.Sprintf("BULK-%05d", i), "body4", bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 10)))
	}
	key := bytes.Repeat([]byte{3}, 16)
	doc, err := pskc.Marshal(keys, pskc.WriteOptions{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "bulk.pskcxml")
	keyFile := filepath.Join(dir, "k")
	os.WriteFile(file, doc, 0o600)
	os.WriteFile(keyFile, []byte(hex.EncodeToString(key)), 0o600)
	dbs := map[string]func(*server.Config){"sqlite": nil}
	if u := os.Getenv("CAMOTP_TEST_POSTGRES"); u != "" {
		dbs["postgres"] = func(c *server.Config) { c.DB = pgtest.URL(b) }
	}
	for name, mod := range dbs {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				srv := testenv.Server(b, b.TempDir(), mod)
				env := Env{Getenv: func(k string) string {
					if k == "CAMOTP_ADMIN_TOKEN" {
						return srv.AdminToken
					}
					return ""
				}}
				var stdout, stderr testenv.SyncBuffer
				env.Stdout, env.Stderr = &stdout, &stderr
				b.StartTimer()
				if code := Main(b.Context(), env, []string{"admin", "--server", "http://" + srv.HTTPAddr(), "camera", "import", "--pskc", file, "--key-file", keyFile}); code != 0 {
					b.Fatalf("import: exit %d %s", code, stderr.String())
				}
				// The same cameras exported (all provisioned ones), timed
				// on their own.
				b.StopTimer()
				out := filepath.Join(b.TempDir(), "export.pskcxml")
				start := time.Now()
				if code := Main(b.Context(), env, []string{"admin", "--server", "http://" + srv.HTTPAddr(), "camera", "export", "--pskc", out, "--key-file", keyFile}); code != 0 {
					b.Fatalf("export: exit %d %s", code, stderr.String())
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "export-ms")
				b.StartTimer()
			}
		})
	}
}

// TestPSKCLimitsParallel: requests past each bound of import and export,
// released together with a valid import: each refused with its reason
// (nothing registered by them), the valid one imported.
func TestPSKCLimitsParallel(t *testing.T) {
	srv, _, _ := pskcServer(t, nil)
	key := bytes.Repeat([]byte{1}, 16)
	good, err := pskc.Marshal([]pskc.Key{totpKey("LIM-OK", "body4", bytes.Repeat([]byte{2}, 20))}, pskc.WriteOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := pskc.Marshal([]pskc.Key{totpKey("LIM-PW", "body4", bytes.Repeat([]byte{2}, 20))}, pskc.WriteOptions{Password: "x", Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slow = bytes.Replace(slow, []byte("<IterationCount>1000<"), []byte("<IterationCount>5000001<"), 1)
	huge := append(bytes.Repeat([]byte(" "), pskc.MaxDocumentBytes), good...)
	var many []string
	for i := range pskc.MaxKeys + 1 {
		many = append(many, fmt.Sprintf("S-%d", i))
	}
	body := `{"pskc":"` + strings.Repeat("A", 23<<20) + `"}`
	reqs := []struct {
		path string
		body any
		code int
		want string
	}{
		{provisioning.PSKCImportPath, provisioning.PSKCImportRequest{PSKC: good, Key: key}, http.StatusCreated, ""},
		{provisioning.PSKCImportPath, body, http.StatusBadRequest, "request body exceeds"},
		{provisioning.PSKCImportPath, provisioning.PSKCImportRequest{PSKC: huge, Key: key}, http.StatusBadRequest, "document too large"},
		{provisioning.PSKCImportPath, provisioning.PSKCImportRequest{PSKC: slow, Password: "x"}, http.StatusBadRequest, "IterationCount must be 1 to 5000000"},
		{provisioning.PSKCExportPath, provisioning.PSKCExportRequest{Serials: many, Key: key}, http.StatusBadRequest, "at most 10000"},
		{provisioning.PSKCExportPath, provisioning.PSKCExportRequest{Serials: []string{"LIM-OK"}, Password: "x", Iterations: pskc.MaxIterations + 1}, 0, ""},
	}
	type answer struct {
		code int
		body map[string]any
	}
	got := make([]answer, len(reqs))
	together.Run(len(reqs), func(i int) {
		// Past provisioning.PSKCSlots at once the server answers 429: ask
		// again, as the CLI's user would.
		for range 1000 {
			if got[i].code, got[i].body = testenv.API(t, srv, srv.AdminToken, "POST", reqs[i].path, reqs[i].body); got[i].code != http.StatusTooManyRequests {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	for i, r := range reqs {
		if r.code == 0 { // the export races the import: refused either way
			if got[i].code != http.StatusBadRequest && got[i].code != http.StatusNotFound {
				t.Errorf("request %d: %d %v", i, got[i].code, got[i].body)
			}
			continue
		}
		if got[i].code != r.code || !strings.Contains(fmt.Sprint(got[i].body["error"]), r.want) {
			t.Errorf("request %d: %d %v, want %d %q", i, got[i].code, got[i].body["error"], r.code, r.want)
		}
	}
	cams, err := srv.Store.Cameras(t.Context())
	if err != nil || len(cams) != 1 || cams[0].Serial != "LIM-OK" {
		t.Fatalf("cameras %+v %v, want LIM-OK only", cams, err)
	}
}
