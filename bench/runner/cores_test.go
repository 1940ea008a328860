package main

import (
	"math"
	"testing"
)

func TestParseCore(t *testing.T) {
	stat := "cpu  900 0 300 5000 100 0 10 40 0 0\n" +
		"cpu0 500 0 200 2000 50 0 5 20 0 0\n" +
		"cpu1 400 10 100 3000 50 0 5 20 0 0\n" +
		"intr 12345\n"
	c := parseCore(stat, "1")
	want := coreTimes{busy: 400 + 10 + 100 + 5, idle: 3000 + 50, steal: 20, ok: true}
	if c != want {
		t.Errorf("parseCore(cpu1) = %+v, want %+v", c, want)
	}
	if c := parseCore(stat, "0"); c.busy != 705 {
		t.Errorf("parseCore(cpu0) took another line: %+v", c)
	}
	for _, bad := range []string{"", "cpu1 1 2 3\n", "cpu1 1 2 3 x 5 6 7 8\n", "cpu10 1 2 3 4 5 6 7 8\n"} {
		if c := parseCore(bad, "1"); c.ok {
			t.Errorf("parseCore(%q) = %+v, want not ok", bad, c)
		}
	}
}

func TestCoreUse(t *testing.T) {
	a := coreTimes{busy: 100, idle: 100, steal: 0, ok: true}
	b := coreTimes{busy: 170, idle: 120, steal: 10, ok: true}
	u := a.until(b)
	if !u.ok || math.Abs(u.busy-0.7) > 1e-9 || math.Abs(u.steal-0.1) > 1e-9 || math.Abs(u.taken()-0.8) > 1e-9 {
		t.Errorf("until = %+v, want busy 0.7, steal 0.1", u)
	}
	if s := u.String(); s != "70% (10% stolen)" {
		t.Errorf("String = %q", s)
	}
	if s := (coreUse{busy: 0.5, ok: true}).String(); s != "50%" {
		t.Errorf("String without steal = %q", s)
	}
	for _, tc := range []struct{ a, b coreTimes }{
		{coreTimes{}, b},
		{a, coreTimes{}},
		{b, a}, // went backwards
		{a, a}, // no time passed
	} {
		if u := tc.a.until(tc.b); u.ok || u.String() != "?" {
			t.Errorf("%+v.until(%+v) = %+v, want not ok", tc.a, tc.b, u)
		}
	}
}

func TestReadCoreOnThisMachine(t *testing.T) {
	c := readCore(gatewayCPU)
	if !c.ok {
		t.Skip("no /proc/stat line for CPU " + gatewayCPU)
	}
	if c.busy+c.idle == 0 {
		t.Errorf("readCore(%s) = %+v: a core that never ran", gatewayCPU, c)
	}
}
