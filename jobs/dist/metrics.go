package dist

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// managerMetrics are the submitter's counters, registered when
// ManagerConfig.Registerer is set.
type managerMetrics struct {
	verdicts *prometheus.CounterVec // by verdict ("cancelled" for cancelled jobs)
	failures *prometheus.CounterVec // failed attempts, by protocol code
	latency  prometheus.Histogram   // submit → verdict
	// ledgerFailures counts ledger entries the manager could not record.
	ledgerFailures prometheus.Counter
}

func newManagerMetrics(reg prometheus.Registerer) (*managerMetrics, error) {
	m := &managerMetrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_jobs_net_verdicts_total", Help: "Jobs this node submitted across the network, by verdict.",
		}, []string{"verdict"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_jobs_net_attempt_failures_total", Help: "Offers to workers that ended without a usable result, by reason code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_jobs_net_seconds", Help: "Submit-to-verdict time of jobs this node submitted across the network.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		ledgerFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_jobs_net_ledger_failures_total", Help: "job.submitted and job.verdict entries this node could not record in its ledger.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.verdicts, m.failures, m.latency, m.ledgerFailures} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("dist: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
