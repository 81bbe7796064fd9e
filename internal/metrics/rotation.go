package metrics

import "github.com/prometheus/client_golang/prometheus"

// RotationStats are the seed rollover schedule's numbers, as its last
// step saw them.
type RotationStats struct {
	// On says a rollover policy is set; Due and Overdue are exported only
	// then.
	On bool
	// Due are cameras whose seed is older than the policy's period and
	// whose rotation has not started; Overdue are those of them that were
	// due already when the last window closed.
	Due, Overdue int
	// Started are the rotations this node's schedule started.
	Started uint64
}

var (
	rotationDueDesc = prometheus.NewDesc("camotp_rotation_due_cameras",
		"Provisioned cameras whose seed is older than the rollover policy's period and whose rotation has not started.", nil, nil)
	rotationOverdueDesc = prometheus.NewDesc("camotp_rotation_overdue_cameras",
		"Due cameras that were due already when the last rollover window closed (offline through it, or past the hourly share).", nil, nil)
	rotationStartedDesc = prometheus.NewDesc("camotp_rotations_scheduled_total",
		"Seed rotations this node's rollover schedule started.", nil, nil)
)

// rotationCollector reads the rollover schedule's numbers at scrape time.
type rotationCollector struct{ stats func() RotationStats }

func (c rotationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rotationDueDesc
	ch <- rotationOverdueDesc
	ch <- rotationStartedDesc
}

func (c rotationCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(rotationStartedDesc, prometheus.CounterValue, float64(st.Started))
	if !st.On {
		return
	}
	ch <- prometheus.MustNewConstMetric(rotationDueDesc, prometheus.GaugeValue, float64(st.Due))
	ch <- prometheus.MustNewConstMetric(rotationOverdueDesc, prometheus.GaugeValue, float64(st.Overdue))
}
