package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/camotp/camotp/internal/model"
)

// ClockDriftBuckets are the upper bounds (seconds) of the fleet's clock
// offset histogram: from well inside one 30 s step to ten minutes.
var ClockDriftBuckets = []float64{0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600}

var (
	clockDriftDesc = prometheus.NewDesc("camotp_camera_clock_offset_seconds",
		"The fleet's camera clock offsets (absolute, seconds) from each camera's last signed clock report: one observation per camera that reported.", nil, nil)
	clockFlagsDesc = prometheus.NewDesc("camotp_camera_clocks_flagged",
		"Cameras whose clock is flagged: drifting (offset past --clock-drift-alert) or mismatch (its clock report disagrees with its codes by more than a step; its reports do not centre the verification window).", []string{"flag"}, nil)
	clockReportsDesc = prometheus.NewDesc("camotp_camera_clock_reports_total",
		"Camera clock reports this node handled, by result: recorded, replayed (not newer than the last one: nothing changed), unchallenged (answering no outstanding challenge of the camera), late (answering its challenge after the bound), forged (signature not the camera's), malformed.", []string{"result"}, nil)
)

// clockCollector reads the cameras' clock records at scrape time.
type clockCollector struct{ src Sources }

func (c *clockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clockDriftDesc
	ch <- clockFlagsDesc
	ch <- clockReportsDesc
}

func (c *clockCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.ClockReports != nil {
		for result, n := range c.src.ClockReports() {
			ch <- prometheus.MustNewConstMetric(clockReportsDesc, prometheus.CounterValue, float64(n), result)
		}
	}
	if c.src.Clocks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	clocks, err := c.src.Clocks(ctx)
	cancel()
	if err != nil {
		c.src.Log.Warn("metrics: camera clocks", "err", err)
		ch <- prometheus.NewInvalidMetric(clockDriftDesc, err)
		return
	}
	h, drifting, mismatch := ClockHistogram(clocks)
	ch <- prometheus.MustNewConstHistogram(clockDriftDesc, h.Count, h.Sum, h.Buckets)
	ch <- prometheus.MustNewConstMetric(clockFlagsDesc, prometheus.GaugeValue, float64(drifting), "drifting")
	ch <- prometheus.MustNewConstMetric(clockFlagsDesc, prometheus.GaugeValue, float64(mismatch), "mismatch")
}

// Histogram is a cumulative histogram as Prometheus exposes one.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64 // upper bound → observations ≤ it
}

// ClockHistogram is the fleet's clock offset histogram (ClockDriftBuckets)
// and the number of cameras flagged drifting and mismatch.
func ClockHistogram(clocks []model.CameraClock) (h Histogram, drifting, mismatch int) {
	h.Buckets = make(map[float64]uint64, len(ClockDriftBuckets))
	for _, b := range ClockDriftBuckets {
		h.Buckets[b] = 0
	}
	for _, k := range clocks {
		v := k.AbsOffsetSeconds()
		h.Count++
		h.Sum += v
		for _, b := range ClockDriftBuckets {
			if v <= b {
				h.Buckets[b]++
			}
		}
		if k.Drifting() {
			drifting++
		}
		if k.Mismatch() {
			mismatch++
		}
	}
	return h, drifting, mismatch
}
