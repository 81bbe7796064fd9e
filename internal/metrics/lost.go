package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newReportedLost is the counter of cameras reported lost.
func newReportedLost() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "camotp_cameras_reported_lost_total",
		Help: "Cameras reported lost or stolen by this node (a repeated report of a camera lost already is not counted).",
	})
}

// CameraReportedLost counts a camera reported lost (it implements
// provisioning.LostObserver).
func (m *Metrics) CameraReportedLost() { m.reportedLost.Inc() }

var lostDesc = prometheus.NewDesc("camotp_cameras_lost",
	"Cameras reported lost or stolen and not found since (found needs a fresh provision).", nil, nil)

// lostCollector reads the number of lost cameras at scrape time, from
// the database (every node gives the same answer).
type lostCollector struct {
	count func(context.Context) (int, error)
	log   *slog.Logger
}

func (c lostCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lostDesc }

func (c lostCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		c.log.Warn("metrics: count lost cameras", "err", err)
		ch <- prometheus.NewInvalidMetric(lostDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.GaugeValue, float64(n))
}
