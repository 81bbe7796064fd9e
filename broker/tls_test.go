package broker

import (
	"github.com/camotp/camotp/internal/together"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "camotp-test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// The TLS listener is guarded too: a connection that never completes its
// handshake is closed at the CONNECT deadline, the cap counts TLS
// connections, and a camera connects over TLS.
func TestTLSListenerGuarded(t *testing.T) {
	cert, pool := selfSigned(t)
	b := startBroker(t, func(c *Config) {
		c.TLSAddr = "127.0.0.1:0"
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		c.ConnectTimeout = 300 * time.Millisecond
		c.MaxConns = 3
	}, "CAM-A")
	idle := together.Flood(t, b.TLSAddr(), 3, nil) // no ClientHello: at the cap
	eventually(t, "three TLS connections held", func() bool { return b.Stats().ConnsOpen == 3 })
	for _, c := range idle {
		if err := closedByPeer(c); err != nil {
			t.Fatalf("TLS connection without handshake: %v", err)
		}
	}
	eventually(t, "the idle TLS connections released", func() bool { return b.Stats().ConnsOpen == 0 })

	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", b.TLSAddr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: "CAM-A", Keepalive: 30,
			UsernameFlag: true, Username: []byte("CAM-A"), PasswordFlag: true, Password: []byte(b.token("CAM-A"))},
	}
	var buf bytes.Buffer
	pk.ConnectEncode(&buf)
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK over TLS: % x %v", ack, err)
	}
	// The session works over TLS.
	if err := ping(c); err != nil {
		t.Fatalf("camera over TLS: %v", err)
	}
}
