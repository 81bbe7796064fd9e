package auditsyslog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig is the TLS setup of a tls:// target: the receiver's CA
// (PEM, "" for the system's roots) and an optional client certificate
// and key (PEM; the key file must not be readable by others).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("audit syslog: a client certificate and its key go together")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("audit syslog CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit syslog CA %s: no PEM certificate in it", caFile)
		}
	}
	if certFile != "" {
		fi, err := os.Stat(keyFile)
		if err != nil {
			return nil, fmt.Errorf("audit syslog client key: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("audit syslog client key %s is readable by others (mode %v): chmod 600 it", keyFile, fi.Mode().Perm())
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("audit syslog client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
