package metrics

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/careq/gateway/internal/statusboard"
)

// The ops status page (issue #19) turns these cumulative counts into the
// refusals of the last minute.
func init() {
	statusboard.Register("refusal_totals", refusalTotals)
}

// refusalTotals reads careq_gateway_responses_total per route and cause,
// summed over codes. It takes the provisioning lock, never a request's.
func refusalTotals() any {
	routes.Lock()
	defer routes.Unlock()
	out := []statusboard.Refusals{}
	var m dto.Metric
	for route, rm := range routes.m {
		for row := range rm.gateway.rows {
			r := rm.gateway.rows[row].Load()
			if r == nil {
				continue
			}
			var n float64
			for code := range r {
				if c := r[code].Load(); c != nil && (*c).Write(&m) == nil {
					n += m.GetCounter().GetValue()
				}
			}
			if n > 0 {
				out = append(out, statusboard.Refusals{Route: route, Cause: string(causeName(row)), Count: n})
			}
		}
	}
	return out
}
