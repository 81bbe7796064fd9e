// Package metrics exposes camotp's Prometheus metrics on a registry of its
// own (no global default registry): sign-ins, verifications, lockouts,
// cameras by provisioning state, online cameras and broker counters.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/camotp/camotp/broker"
	"github.com/camotp/camotp/internal/model"
)

// Sources are what the metrics read at scrape time. Nil fields are skipped.
type Sources struct {
	// CameraStates counts cameras by provisioning state.
	CameraStates func(ctx context.Context) (map[string]int, error)
	// Online is the number of cameras reporting online.
	Online func(context.Context) (int, error)
	// Broker returns the embedded broker's counters (nil with an external broker).
	Broker func() broker.Stats
	// AuditFailures is the number of audit entries that could not be written.
	AuditFailures func() uint64
	// AuditForward reads the audit syslog forwarder (nil: not forwarding).
	AuditForward func(ctx context.Context) (AuditForward, error)
	// LostCameras is the number of cameras reported lost now.
	LostCameras func(context.Context) (int, error)

	// Clocks are the cameras' clock records (the drift histogram and the
	// flagged gauges); ClockReports counts this node's clock reports by
	// result.
	Clocks       func(ctx context.Context) ([]model.CameraClock, error)
	ClockReports func() map[string]uint64
	// Rotation returns the seed rollover schedule's numbers.
	Rotation func() RotationStats
	Log      *slog.Logger
}

// Metrics holds the counters and the registry they are served from. It
// implements signin.Observer.
type Metrics struct {
	reg           *prometheus.Registry
	signIns       *prometheus.CounterVec
	verifications *prometheus.CounterVec
	lockouts      *prometheus.CounterVec
	radius        *prometheus.CounterVec
	reportedLost  prometheus.Counter
}

// New registers every metric on a fresh registry.
func New(src Sources) *Metrics {
	if src.Log == nil {
		src.Log = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "camotp_signin_attempts_total",
			Help: "Sign-in attempts by step (password, mfa), method and result.",
		}, []string{"step", "method", "result"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "camotp_verifications_total",
			Help: "One-time codes checked, by method and result (ok, invalid, replayed, clock-off, blocked).",
		}, []string{"method", "result"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "camotp_lockouts_total",
			Help: "Times failures blocked an (account, IP) pair or an account, by step (password, otp, send).",
		}, []string{"step"}),
		radius: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "camotp_radius_requests_total",
			Help: "RADIUS requests by result: accept, challenge, reject, status, or why one was dropped unanswered (unknown-client, bad-authenticator, no-message-authenticator, malformed, unsupported, duplicate, busy, error).",
		}, []string{"result"}),
	}
	m.reportedLost = newReportedLost()
	m.reg.MustRegister(m.reportedLost)
	if src.LostCameras != nil {
		m.reg.MustRegister(lostCollector{src.LostCameras, src.Log})
	}
	m.reg.MustRegister(m.signIns, m.verifications, m.lockouts, m.radius,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.AuditFailures != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "camotp_audit_write_failures_total",
			Help: "Audit entries that could not be written (each is also logged at ERROR).",
		}, func() float64 { return float64(src.AuditFailures()) }))
	}
	if src.Rotation != nil {
		m.reg.MustRegister(rotationCollector{src.Rotation})
	}
	if src.AuditForward != nil {
		m.reg.MustRegister(&auditForwardCollector{read: src.AuditForward, src: src})
	}
	if src.CameraStates != nil || src.Online != nil || src.Broker != nil {
		m.reg.MustRegister(&fleetCollector{src: src})
	}
	if src.Clocks != nil || src.ClockReports != nil {
		m.reg.MustRegister(&clockCollector{src: src})
	}
	return m
}

// SignIn counts a sign-in attempt; MFA attempts with a code count as
// verifications too.
func (m *Metrics) SignIn(step, method, result string) {
	m.signIns.WithLabelValues(step, method, result).Inc()
	if step == "mfa" && method != "trusted-browser" && method != "none" {
		m.verifications.WithLabelValues(method, result).Inc()
	}
}

// Lockout counts a lockout on step.
func (m *Metrics) Lockout(step string) { m.lockouts.WithLabelValues(step).Inc() }

// RADIUSRequest counts a RADIUS request by result.
func (m *Metrics) RADIUSRequest(result string) { m.radius.WithLabelValues(result).Inc() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	camerasDesc = prometheus.NewDesc("camotp_cameras",
		"Registered cameras by provisioning state (pending:<op> while an operation is in flight).", []string{"state"}, nil)
	onlineDesc = prometheus.NewDesc("camotp_cameras_online",
		"Cameras connected now: from the embedded broker's connect/disconnect events, or their last status message (online, offline or will) on an external broker.", nil, nil)
	brokerGauges = map[string]*prometheus.Desc{
		"clients":       prometheus.NewDesc("camotp_mqtt_clients_connected", "MQTT clients connected to the embedded broker.", nil, nil),
		"subscriptions": prometheus.NewDesc("camotp_mqtt_subscriptions", "Active subscriptions on the embedded broker.", nil, nil),
		"inflight":      prometheus.NewDesc("camotp_mqtt_inflight_messages", "QoS>0 messages in flight on the embedded broker.", nil, nil),
		"retained":      prometheus.NewDesc("camotp_mqtt_retained_messages", "Retained messages on the embedded broker.", nil, nil),
		"conns_open":    prometheus.NewDesc("camotp_mqtt_connections_open", "TCP connections open on the embedded broker, CONNECT sent or not.", nil, nil),
	}
	brokerCounters = map[string]*prometheus.Desc{
		"bytes_received":    prometheus.NewDesc("camotp_mqtt_received_bytes_total", "Bytes received by the embedded broker.", nil, nil),
		"bytes_sent":        prometheus.NewDesc("camotp_mqtt_sent_bytes_total", "Bytes sent by the embedded broker.", nil, nil),
		"messages_received": prometheus.NewDesc("camotp_mqtt_received_messages_total", "PUBLISH messages received by the embedded broker.", nil, nil),
		"messages_sent":     prometheus.NewDesc("camotp_mqtt_sent_messages_total", "PUBLISH messages sent by the embedded broker.", nil, nil),
		"messages_dropped":  prometheus.NewDesc("camotp_mqtt_dropped_messages_total", "Messages the embedded broker dropped for slow subscribers.", nil, nil),
		"inflight_dropped":  prometheus.NewDesc("camotp_mqtt_inflight_dropped_total", "In-flight messages the embedded broker dropped.", nil, nil),
		"packets_received":  prometheus.NewDesc("camotp_mqtt_received_packets_total", "MQTT packets received by the embedded broker.", nil, nil),
		"packets_sent":      prometheus.NewDesc("camotp_mqtt_sent_packets_total", "MQTT packets sent by the embedded broker.", nil, nil),
		"refused_cap":       prometheus.NewDesc("camotp_mqtt_connections_refused_total", "Connections the embedded broker closed at once over its total connection cap.", nil, nil),
		"refused_per_ip":    prometheus.NewDesc("camotp_mqtt_connections_refused_per_ip_total", "Connections the embedded broker closed at once over its per-address cap.", nil, nil),
		"accept_errors":     prometheus.NewDesc("camotp_mqtt_accept_errors_total", "Failed accepts on the embedded broker's listeners (e.g. out of file descriptors), each retried.", nil, nil),
	}
)

// fleetCollector reads the fleet and broker state at scrape time.
type fleetCollector struct{ src Sources }

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- camerasDesc
	ch <- onlineDesc
	for _, d := range brokerGauges {
		ch <- d
	}
	for _, d := range brokerCounters {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.CameraStates != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		states, err := c.src.CameraStates(ctx)
		cancel()
		if err != nil {
			c.src.Log.Warn("metrics: count cameras", "err", err)
			ch <- prometheus.NewInvalidMetric(camerasDesc, err)
		}
		for state, n := range states {
			ch <- prometheus.MustNewConstMetric(camerasDesc, prometheus.GaugeValue, float64(n), state)
		}
	}
	if c.src.Online != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := c.src.Online(ctx)
		cancel()
		if err != nil {
			c.src.Log.Warn("metrics: count online cameras", "err", err)
			ch <- prometheus.NewInvalidMetric(onlineDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(onlineDesc, prometheus.GaugeValue, float64(n))
		}
	}
	if c.src.Broker == nil {
		return
	}
	st := c.src.Broker()
	gauges := map[string]int64{"clients": st.ClientsConnected, "subscriptions": st.Subscriptions,
		"inflight": st.Inflight, "retained": st.Retained, "conns_open": st.ConnsOpen}
	for k, v := range gauges {
		ch <- prometheus.MustNewConstMetric(brokerGauges[k], prometheus.GaugeValue, float64(v))
	}
	counters := map[string]int64{"bytes_received": st.BytesReceived, "bytes_sent": st.BytesSent,
		"messages_received": st.MessagesReceived, "messages_sent": st.MessagesSent,
		"messages_dropped": st.MessagesDropped, "inflight_dropped": st.InflightDropped,
		"packets_received": st.PacketsReceived, "packets_sent": st.PacketsSent,
		"refused_cap": st.ConnsRejectedCap, "refused_per_ip": st.ConnsRejectedPerIP, "accept_errors": st.AcceptErrors}
	for k, v := range counters {
		ch <- prometheus.MustNewConstMetric(brokerCounters[k], prometheus.CounterValue, float64(v))
	}
}
