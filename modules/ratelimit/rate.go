package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxPerSecond bounds a zone's rate. The shared limiter keeps time in
// microseconds, so one event per microsecond is the finest it can tell apart.
const maxPerSecond = 1_000_000

// maxEvents bounds the event count of a rate so that burst defaults and
// header values stay far from integer overflow.
const maxEvents = 1_000_000_000

// Rate is a number of events per second, minute or hour.
type Rate struct {
	Events int64
	Per    time.Duration
}

// ParseRate parses "<events>/<unit>", where unit is s, m or h: 20/s, 600/m,
// 10000/h.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, errors.New("want <events>/<s|m|h>, e.g. 20/s")
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("unit must be s, m or h, not %q", unit)
	}
	if num == "" || num[0] == '+' || num[0] == '-' {
		return Rate{}, errors.New("events must be a positive whole number")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > maxEvents {
		return Rate{}, fmt.Errorf("events must be a whole number from 1 to %d", maxEvents)
	}
	r := Rate{Events: n, Per: per}
	if r.PerSecond() > maxPerSecond {
		return Rate{}, fmt.Errorf("at most %d events per second", maxPerSecond)
	}
	return r, nil
}

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 {
	return float64(r.Events) / r.Per.Seconds()
}

// Interval is the time one event's budget takes to come back.
func (r Rate) Interval() time.Duration {
	return r.Per / time.Duration(r.Events)
}

// String formats r the way ParseRate reads it.
func (r Rate) String() string {
	unit := "s"
	switch r.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatInt(r.Events, 10) + "/" + unit
}
