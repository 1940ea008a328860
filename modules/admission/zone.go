package admission

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/ticker"
)

// gaugeEvery is how often a zone's limit, latencies and in-flight counts
// are copied to their gauges: updating them on every request would cost
// the hot path (the zone counts its classes' requests in flight anyway).
const gaugeEvery = 250 * time.Millisecond

// zoneEntry is a zone as held in zones: it keeps the zone's gauges up to
// date until destroyed.
type zoneEntry struct {
	z    *zone
	stop context.CancelFunc
}

func newZoneEntry(z *zone, limit, unloaded, measured prometheus.Gauge, inflight []prometheus.Gauge) *zoneEntry {
	e := &zoneEntry{z: z}
	limit.Set(float64(z.limit.Load()))
	for c, g := range inflight {
		g.Set(float64(z.class[c].inflight.Load()))
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go ticker.Every(ctx, gaugeEvery, func(time.Time) {
		limit.Set(float64(z.limit.Load()))
		for c, g := range inflight {
			g.Set(float64(z.class[c].inflight.Load()))
		}
		if z.adapt != nil {
			u, m := z.adapt.state()
			unloaded.Set(u.Seconds())
			measured.Set(m.Seconds())
		}
	})
	return e
}

// Destruct stops the gauges' updates.
func (e *zoneEntry) Destruct() error {
	e.stop()
	return nil
}
