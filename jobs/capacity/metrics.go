package capacity

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Service's collectors.
type metrics struct {
	reg       prometheus.Registerer // nil: not registered
	rejected  *prometheus.CounterVec
	accepted  prometheus.Counter
	ignored   *prometheus.CounterVec
	published prometheus.Counter
	collected []prometheus.Collector
}

// newMetrics makes the collectors and registers them on reg, if not nil.
func newMetrics(reg prometheus.Registerer, viewSize func() int) (*metrics, error) {
	m := &metrics{
		reg: reg,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_capacity_adverts_rejected_total",
			Help: "Capacity adverts rejected by the topic validator, by reason.",
		}, []string{"reason"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_capacity_adverts_accepted_total",
			Help: "Valid capacity adverts delivered to the capacity view (the node's own included).",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_capacity_adverts_ignored_total",
			Help: "Capacity adverts ignored without penalty for the relay (duplicate or stale), by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_capacity_adverts_published_total",
			Help: "Capacity adverts this node published.",
		}),
	}
	for _, r := range Reasons() {
		if r.Ignored() {
			m.ignored.WithLabelValues(string(r))
		} else {
			m.rejected.WithLabelValues(string(r))
		}
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_capacity_view_peers",
		Help: "Peers with an unexpired advert in the capacity view (the node itself included).",
	}, func() float64 { return float64(viewSize()) })
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rejected, m.accepted, m.ignored, m.published, gauge} {
		if err := m.reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("capacity: register metrics (is another capacity service registered on this registry?): %w", err)
		}
		m.collected = append(m.collected, c)
	}
	return m, nil
}

// unregister removes the registered collectors.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collected {
		m.reg.Unregister(c)
	}
	m.collected = nil
}
