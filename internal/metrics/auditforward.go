package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AuditForward is the state of the audit log's syslog forwarder.
type AuditForward struct {
	// LagRows is how many audit rows the receiver has not confirmed,
	// LagSeconds the age of the oldest of them.
	LagRows    int64
	LagSeconds float64
	// Forwarded counts rows the receiver confirmed, Failures failed
	// connections.
	Forwarded, Failures uint64
	// Up is whether the last connection was confirmed.
	Up bool
	// Rewinds counts chains found cut back or rewritten in the database
	// after they were forwarded.
	Rewinds uint64
}

var (
	fwdLagRows = prometheus.NewDesc("camotp_audit_syslog_lag_rows",
		"Audit rows the syslog receiver has not confirmed yet (they wait in the database).", nil, nil)
	fwdLagSeconds = prometheus.NewDesc("camotp_audit_syslog_lag_seconds",
		"Age of the oldest audit row the syslog receiver has not confirmed (0 when caught up).", nil, nil)
	fwdForwarded = prometheus.NewDesc("camotp_audit_syslog_forwarded_rows_total",
		"Audit rows the syslog receiver confirmed (resends after an outage included).", nil, nil)
	fwdFailures = prometheus.NewDesc("camotp_audit_syslog_failures_total",
		"Connections to the syslog receiver that failed (connect, write, early close, no close after the end of stream).", nil, nil)
	fwdRewinds = prometheus.NewDesc("camotp_audit_syslog_rewinds_total",
		"Audit chains found cut back or rewritten in the database after the syslog receiver got them (tampering: each is sent again from its start).", nil, nil)
	fwdUp = prometheus.NewDesc("camotp_audit_syslog_up",
		"1 when the last connection to the syslog receiver was confirmed, 0 during an outage.", nil, nil)
)

// auditForwardCollector reads the forwarder at scrape time.
type auditForwardCollector struct {
	read func(ctx context.Context) (AuditForward, error)
	src  Sources
}

func (c *auditForwardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fwdLagRows, fwdLagSeconds, fwdForwarded, fwdFailures, fwdRewinds, fwdUp} {
		ch <- d
	}
}

func (c *auditForwardCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := c.read(ctx)
	cancel()
	if err != nil {
		c.src.Log.Warn("metrics: audit syslog lag", "err", err)
		ch <- prometheus.NewInvalidMetric(fwdLagRows, err)
	} else {
		ch <- prometheus.MustNewConstMetric(fwdLagRows, prometheus.GaugeValue, float64(st.LagRows))
		ch <- prometheus.MustNewConstMetric(fwdLagSeconds, prometheus.GaugeValue, st.LagSeconds)
	}
	ch <- prometheus.MustNewConstMetric(fwdForwarded, prometheus.CounterValue, float64(st.Forwarded))
	ch <- prometheus.MustNewConstMetric(fwdFailures, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(fwdRewinds, prometheus.CounterValue, float64(st.Rewinds))
	up := 0.0
	if st.Up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(fwdUp, prometheus.GaugeValue, up)
}
