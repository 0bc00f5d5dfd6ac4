package client

import (
	"context"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics returns the daemon's metrics (GET /v1/metrics, the Prometheus
// text format) by family name.
func (c *Client) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	resp, err := c.Stream(ctx, "GET", "/v1/metrics", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse the metrics of %s: %w", c.Addr(), err)
	}
	return fams, nil
}

// CounterSum returns the sum of a counter family's values over all its
// labels, 0 if fams has no such family.
func CounterSum(fams map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// CounterWith returns the value of the counter of family name whose label
// key has value, 0 if there is none.
func CounterWith(fams map[string]*dto.MetricFamily, name, key, value string) float64 {
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == key && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
