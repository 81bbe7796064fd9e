package testenv

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a Debian mosquitto (2.0) broker with the dynamic security
// plugin, started for one test on a loopback port: its admin client
// (made by 'mosquitto_ctrl dynsec init') may use the plugin's control
// topic, nobody else exists yet.
type Mosquitto struct {
	// Addr is HOST:PORT; URL is tcp://Addr.
	Addr, URL string
	// AdminUser and AdminPassword log in as the plugin's admin;
	// AdminPasswordFile holds the password (0600), as serve takes it.
	AdminUser, AdminPassword, AdminPasswordFile string
	// Dir holds the configuration and the plugin's JSON file.
	Dir string

	cmd *exec.Cmd
	log *SyncBuffer
}

// SyncBuffer is a bytes.Buffer a child process (mosquitto, a camotp
// binary) writes to while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Log is what mosquitto wrote so far.
func (m *Mosquitto) Log() string { return m.log.String() }

// dynsecPlugin finds Debian's (or another distribution's) plugin library.
func dynsecPlugin() string {
	for _, pattern := range []string{"/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
		"/usr/local/lib/mosquitto_dynamic_security.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// NeedMosquitto skips the test when mosquitto, its clients or the dynamic
// security plugin are not installed (Debian: mosquitto, mosquitto-clients;
// CI installs them).
func NeedMosquitto(tb testing.TB) string {
	tb.Helper()
	for _, b := range []string{"mosquitto", "mosquitto_ctrl", "mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(b); err != nil {
			tb.Skipf("%s not installed (Debian mosquitto / mosquitto-clients); CI installs it", b)
		}
	}
	plugin := dynsecPlugin()
	if plugin == "" {
		tb.Skip("mosquitto_dynamic_security.so not found (Debian mosquitto 2.0 ships it); CI installs it")
	}
	return plugin
}

// StartMosquitto starts mosquitto with the dynamic security plugin on a
// free loopback port, set up the way docs/scale-out.md says: the plugin
// file made by 'mosquitto_ctrl dynsec init' (the admin password typed on
// its standard input), no anonymous clients. It is stopped at cleanup.
func StartMosquitto(tb testing.TB) *Mosquitto {
	tb.Helper()
	plugin := NeedMosquitto(tb)
	m := &Mosquitto{Dir: tb.TempDir(), AdminUser: "camotp-admin", AdminPassword: rand.Text()}
	m.AdminPasswordFile = filepath.Join(m.Dir, "dynsec-admin.password")
	if err := os.WriteFile(m.AdminPasswordFile, []byte(m.AdminPassword+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	dynsec := filepath.Join(m.Dir, "dynamic-security.json")
	initCmd := exec.Command("mosquitto_ctrl", "dynsec", "init", dynsec, m.AdminUser)
	initCmd.Stdin = strings.NewReader(m.AdminPassword + "\n" + m.AdminPassword + "\n")
	if out, err := initCmd.CombinedOutput(); err != nil {
		tb.Fatalf("mosquitto_ctrl dynsec init: %v\n%s", err, out)
	}
	if err := os.Chmod(dynsec, 0o600); err != nil {
		tb.Fatal(err)
	}
	// A free port can be taken between our probe and mosquitto's bind:
	// then mosquitto exits at once and we try another.
	var lastLog string
	for range 5 {
		port, err := freeTCPPort()
		if err != nil {
			tb.Fatal(err)
		}
		m.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		m.URL = "tcp://" + m.Addr
		conf := filepath.Join(m.Dir, "mosquitto.conf")
		var b strings.Builder
		if os.Geteuid() == 0 {
			// As root, mosquitto would switch to the "mosquitto" user, which
			// cannot write the plugin file in the test's directory.
			b.WriteString("user root\n")
		}
		fmt.Fprintf(&b, "per_listener_settings false\nallow_anonymous false\npersistence false\n"+
			"listener %d 127.0.0.1\nplugin %s\nplugin_opt_config_file %s\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
			port, plugin, dynsec)
		if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
			tb.Fatal(err)
		}
		m.log = &SyncBuffer{}
		m.cmd = exec.Command("mosquitto", "-c", conf)
		m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
		if err := m.cmd.Start(); err != nil {
			tb.Fatalf("start mosquitto: %v", err)
		}
		exited := make(chan struct{})
		go func() { m.cmd.Wait(); close(exited) }()
		if waitListening(m.Addr, exited, 10*time.Second) {
			tb.Cleanup(func() {
				m.cmd.Process.Kill()
				<-exited
				if tb.Failed() {
					tb.Logf("mosquitto log:\n%s", m.log.String())
				}
			})
			return m
		}
		m.cmd.Process.Kill()
		<-exited
		lastLog = m.log.String()
		if !strings.Contains(lastLog, "in use") {
			break
		}
	}
	tb.Fatalf("mosquitto did not start:\n%s", lastLog)
	return nil
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts TCP connections, the process
// exits, or the bound passes.
func waitListening(addr string, exited <-chan struct{}, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// Sub runs mosquitto_sub with args (-h/-p added) and returns its combined
// output and exit error. MQTT v5 is used unless args say otherwise, so a
// refused subscription shows its reason code.
func (m *Mosquitto) Sub(args ...string) (string, error) {
	return m.run("mosquitto_sub", args)
}

// Pub runs mosquitto_pub like Sub.
func (m *Mosquitto) Pub(args ...string) (string, error) {
	return m.run("mosquitto_pub", args)
}

func (m *Mosquitto) run(bin string, args []string) (string, error) {
	h, p, _ := net.SplitHostPort(m.Addr)
	full := append([]string{"-h", h, "-p", p}, args...)
	out, err := exec.Command(bin, full...).CombinedOutput()
	return string(out), err
}
