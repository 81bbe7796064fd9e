// Package notify delivers one-time codes to people: email over SMTP, text
// messages and phone calls through an HTTP webhook (mapped by the operator
// to their SMS/voice gateway), and a development outbox that keeps
// messages in the database for `make run` and tests.
package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// Channels.
const (
	Email = "email"
	SMS   = "sms"
	Call  = "call"
)

// Message is one message to a person.
type Message struct {
	Channel string `json:"channel"`
	// To is an email address (email) or an E.164 phone number (sms, call).
	To      string `json:"to"`
	Subject string `json:"subject,omitempty"`
	// Text is the message (for a call, what the voice says).
	Text string `json:"text"`
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Router sends each message with the sender of its channel.
type Router map[string]Sender

// Configured tells whether channel has a sender.
func (r Router) Configured(channel string) bool { _, ok := r[channel]; return ok }

// Send delivers m on its channel.
func (r Router) Send(ctx context.Context, m Message) error {
	s, ok := r[m.Channel]
	if !ok {
		return fmt.Errorf("no sender configured for %s", m.Channel)
	}
	return s.Send(ctx, m)
}

// checkHeader refuses values that could inject mail headers or commands.
func checkHeader(name, v string) error {
	if v == "" || strings.ContainsAny(v, "\r\n") || len(v) > 320 {
		return fmt.Errorf("%s %q: empty, too long or has a line break", name, v)
	}
	return nil
}

// SMTP sends email.
type SMTP struct {
	Host string
	Port int
	From string
	// Security: "starttls" (default), "tls" (implicit, port 465) or "none"
	// (loopback relays and tests only).
	Security           string
	Username, Password string
	Timeout            time.Duration
	// TLSConfig overrides the TLS settings (tests: a private CA).
	TLSConfig *tls.Config
}

// Send delivers m by SMTP.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	for name, v := range map[string]string{"to": m.To, "from": s.From, "subject": m.Subject} {
		if err := checkHeader(name, v); err != nil {
			return fmt.Errorf("email: %w", err)
		}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsConf := s.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	}
	var conn net.Conn
	var err error
	d := &net.Dialer{}
	if s.Security == "tls" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("email: connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("email: %s: %w", addr, err)
	}
	defer c.Close()
	if s.Security == "" || s.Security == "starttls" {
		if err := c.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("email: STARTTLS with %s: %w", addr, err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return fmt.Errorf("email: authenticate to %s: %w", addr, err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("email: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("email: RCPT TO %s: %w", m.To, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("email: DATA: %w", err)
	}
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		s.From, m.To, m.Subject, time.Now().UTC().Format(time.RFC1123Z), strings.ReplaceAll(m.Text, "\n", "\r\n"))
	if err := w.Close(); err != nil {
		return fmt.Errorf("email: send: %w", err)
	}
	return c.Quit()
}

// Webhook posts each message as JSON to URL, the shape an operator maps to
// their SMS or voice gateway:
//
//	{"channel": "sms", "to": "+15551234567", "text": "Your sign-in code is 123456 ..."}
//
// with "Authorization: Bearer TOKEN" when Token is set. Any 2xx is success.
type Webhook struct {
	URL    string
	Token  string
	Client *http.Client
}

// Send posts m.
func (h *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s webhook: %w", m.Channel, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s webhook: %w", m.Channel, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s webhook: gateway answered %s", m.Channel, resp.Status)
	}
	return nil
}

// OutboxStore keeps development messages.
type OutboxStore interface {
	AddOutbox(ctx context.Context, m model.OutboxMessage) error
}

// Outbox keeps messages in the database instead of sending them: for
// `make run` and tests. Never for production: the codes are readable at
// /dev/outbox and by `camotp admin outbox`.
type Outbox struct{ Store OutboxStore }

// Send stores m.
func (o Outbox) Send(ctx context.Context, m Message) error {
	if err := checkHeader("to", m.To); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.Store.AddOutbox(ctx, model.OutboxMessage{Channel: m.Channel, Address: m.To, Subject: m.Subject, Body: m.Text})
}
