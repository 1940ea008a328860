package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// mtFullChain is a gateway with every CareQ module in one chain, two
// careq_backend replicas, and a second site whose routes trip a breaker
// (a dead upstream) and a rate limit.
func mtFullChain(a, b, gw, gw2, dead string) string {
	const auth = `careq_auth {
		jwt {
			key_file config/dev/jwt-es256.pub
			issuer careq-auth
			audience careq-api
		}
		require queue:read
	}`
	return fmt.Sprintf(`
http://%[1]s {
	careq_backend mt-a {
		faults
	}
}

http://%[2]s {
	careq_backend mt-b {
		faults
	}
}

http://%[3]s {
	careq_request_id
	careq_metrics queues
	careq_methods GET HEAD POST DELETE
	%[6]s
	careq_ratelimit api {
		key {http.auth.user.id}
		rate 100/s
		burst 100
	}
	careq_admission queues {
		adaptive 4 100 16
		class staff 30%% {
			when scope queue:call
		}
		class others
	}
	careq_breaker queues {
		consecutive_failures 5
		open_for 10s
	}
	@q path_regexp q ^/api/v1/queues/([^/]+)
	reverse_proxy @q %[1]s %[2]s {
		lb_policy careq_queue {re.q.1} strict
		transport http {
			response_header_timeout 1s
		}
	}
	handle_errors {
		careq_problem
	}
}

http://%[4]s {
	careq_request_id
	handle /broken/* {
		careq_metrics broken
		careq_breaker broken {
			consecutive_failures 2
			open_for 30s
		}
		reverse_proxy %[5]s
	}
	handle /tight/* {
		careq_metrics tight
		%[6]s
		careq_ratelimit tight {
			key {http.auth.user.id}
			rate 1/m
			burst 2
		}
		reverse_proxy %[1]s
	}
	handle_errors {
		careq_problem
	}
}
`, a, b, gw, gw2, dead, auth)
}

// mtToken mints a dev token with the gateway binary.
func mtToken(t *testing.T, sub, scopes string) string {
	t.Helper()
	cmd := exec.Command(gatewayBin, "token", "--key", "config/dev/jwt-es256.key", "--sub", sub,
		"--scopes", scopes, "--issuer", "careq-auth", "--audience", "careq-api")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("minting a token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// mtPromtool returns promtool's path; without it the calling test fails
// in CI (CI=true) and is skipped elsewhere.
func mtPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	const msg = "promtool not found in PATH: install Debian's prometheus package (apt-get install -y prometheus)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// mtParse parses a text exposition.
func mtParse(t *testing.T, scrape string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(scrape))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return mfs
}

// mtValue sums the counter or gauge values of family name whose labels
// include every pair of kv; found reports whether any series matched.
func mtValue(mfs map[string]*dto.MetricFamily, name string, kv ...string) (sum float64, found bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}

// mtSend sends one request and checks its status.
func mtSend(t *testing.T, method, url, body string, want int, hdr ...string) {
	t.Helper()
	var req *http.Request
	var err error
	if body != "" {
		req, err = http.NewRequest(method, url, strings.NewReader(body))
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, b := do(t, req)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
}

// TestMetricsFullChain serves traffic through every module and checks the
// scrape: promtool accepts it, each answer is counted where it belongs, and
// every metric the dashboard and the Prometheus rules use is exported.
func TestMetricsFullChain(t *testing.T) {
	a, b := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw, gw2 := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, mtFullChain(a, b, gw, gw2, dead), a, b, gw, gw2)

	bearer := "Bearer " + mtToken(t, "u1", "queue:read,queue:write")
	noScope := "Bearer " + mtToken(t, "u2", "profile:read")
	q := "http://" + gw + "/api/v1/queues/metrics-q"
	steps := []struct {
		what, method, url, body string
		want                    int
		hdr                     []string
	}{
		{"take a ticket", "POST", q + "/tickets", `{"patient":"p1","priority":"routine"}`, 201, []string{"Authorization", bearer}},
		{"take another", "POST", q + "/tickets", `{"patient":"p2","priority":"urgent"}`, 201, []string{"Authorization", bearer}},
		{"list the queue", "GET", q + "/tickets", "", 200, []string{"Authorization", bearer}},
		{"call the next patient", "POST", q + "/call", "", 200, []string{"Authorization", bearer}},
		{"no token", "GET", q + "/tickets", "", 401, nil},
		{"no scope", "GET", q + "/tickets", "", 403, []string{"Authorization", noScope}},
		{"method not allowed", "PUT", q + "/tickets", "", 405, []string{"Authorization", bearer}},
		{"unknown method", "BREW", q + "/tickets", "", 501, []string{"Authorization", bearer}},
		{"garbage from the backend", "GET", q + "/tickets", "", 502, []string{"Authorization", bearer, "X-CareQ-Fault", "garbage"}},
		{"backend hangs", "GET", q + "/tickets", "", 504, []string{"Authorization", bearer, "X-CareQ-Fault", "hang"}},
		{"dead upstream 1", "GET", "http://" + gw2 + "/broken/x", "", 502, nil},
		{"dead upstream 2", "GET", "http://" + gw2 + "/broken/x", "", 502, nil},
		{"breaker open", "GET", "http://" + gw2 + "/broken/x", "", 503, nil},
		{"tight zone 1", "GET", "http://" + gw2 + "/tight/x", "", 404, []string{"Authorization", bearer}},
		{"tight zone 2", "GET", "http://" + gw2 + "/tight/x", "", 404, []string{"Authorization", bearer}},
		{"tight zone rejects", "GET", "http://" + gw2 + "/tight/x", "", 429, []string{"Authorization", bearer}},
	}
	for _, s := range steps {
		mtSend(t, s.method, s.url, s.body, s.want, s.hdr...)
	}
	mtWebSocket(t, "ws://"+gw+"/api/v1/queues/metrics-q/live", bearer, func() {
		// While the tunnel is open the upgrade is in flight.
		if v, _ := mtValue(mtParse(t, g.metrics()), "careq_http_requests_in_flight", "route", "queues"); v != 1 {
			t.Errorf("in flight on queues with a WebSocket open = %v, want 1", v)
		}
	})

	// The upgrade is counted when its tunnel closes, just after the client
	// is gone; wait for it, boundedly.
	var mfs map[string]*dto.MetricFamily
	var scrape string
	deadline := time.Now().Add(10 * time.Second)
	for {
		scrape = g.metrics()
		mfs = mtParse(t, scrape)
		n, _ := mtValue(mfs, "careq_http_requests_total", "route", "queues", "code", "101")
		inFlight, _ := mtValue(mfs, "careq_http_requests_in_flight")
		if n >= 1 && inFlight == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("counts", func(t *testing.T) {
		tests := []struct {
			name   string
			metric string
			kv     []string
			want   float64
		}{
			{"tickets taken", "careq_http_requests_total", []string{"route", "queues", "method", "POST", "code", "201", "source", "backend"}, 2},
			{"upgrade counted once", "careq_http_requests_total", []string{"route", "queues", "method", "GET", "code", "101", "source", "backend"}, 1},
			{"unknown method is OTHER", "careq_http_requests_total", []string{"route", "queues", "method", "OTHER", "code", "501", "source", "gateway"}, 1},
			{"401 by the gateway", "careq_http_gateway_responses_total", []string{"route", "queues", "cause", "unauthorized", "code", "401"}, 1},
			{"403 by the gateway", "careq_http_gateway_responses_total", []string{"route", "queues", "cause", "forbidden", "code", "403"}, 1},
			{"405 by the gateway", "careq_http_gateway_responses_total", []string{"route", "queues", "cause", "method-not-allowed", "code", "405"}, 1},
			{"bad response", "careq_http_gateway_responses_total", []string{"route", "queues", "cause", "upstream-bad-response", "code", "502"}, 1},
			{"timeout", "careq_http_gateway_responses_total", []string{"route", "queues", "cause", "upstream-timeout", "code", "504"}, 1},
			{"breaker open", "careq_http_gateway_responses_total", []string{"route", "broken", "cause", "breaker-open", "code", "503"}, 1},
			{"rate limited", "careq_http_gateway_responses_total", []string{"route", "tight", "cause", "rate-limited", "code", "429"}, 1},
			{"backend 404 is the backend's", "careq_http_requests_total", []string{"route", "tight", "code", "404", "source", "backend"}, 2},
			{"upstream dial failures", "careq_upstream_failures_total", []string{"route", "broken", "kind", "dial"}, 2},
			{"upstream timeouts", "careq_upstream_failures_total", []string{"route", "queues", "kind", "timeout"}, 1},
			{"upstream bad responses", "careq_upstream_failures_total", []string{"route", "queues", "kind", "bad_response"}, 1},
			{"no upstream dial failure on queues", "careq_upstream_failures_total", []string{"route", "queues", "kind", "dial"}, 0},
			{"nothing in flight", "careq_http_requests_in_flight", nil, 0},
			{"every request timed", "careq_http_request_duration_seconds", []string{"route", "queues"}, 11},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, found := mtValue(mfs, tt.metric, tt.kv...)
				if !found || got != tt.want {
					t.Errorf("%s%v = %v (found %v), want %v", tt.metric, tt.kv, got, found, tt.want)
				}
			})
		}
	})

	t.Run("native histogram served", func(t *testing.T) {
		// What a Prometheus with native histograms asks for.
		req, err := http.NewRequest(http.MethodGet, "http://"+g.admin+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err != nil {
				t.Fatalf("no careq_http_request_duration_seconds in the protobuf scrape (%v; content type %q)", err, resp.Header.Get("Content-Type"))
			}
			if mf.GetName() != "careq_http_request_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				if h.Schema == nil || len(h.GetPositiveSpan()) == 0 || len(h.GetBucket()) == 0 {
					t.Errorf("series %v: schema %v, %d native spans, %d classic buckets; want both kinds", m.GetLabel(), h.Schema, len(h.GetPositiveSpan()), len(h.GetBucket()))
				}
			}
			return
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		cmd := exec.Command(mtPromtool(t), "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("dashboard and rules use exported metrics", func(t *testing.T) {
		used := mtUsedMetrics(t)
		if len(used) < 10 {
			t.Fatalf("found only %d metric names in the dashboard and rules: %v", len(used), used)
		}
		t.Logf("the dashboard and rules use %v", used)
		for _, name := range used {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok {
					if mf, ok := mfs[b]; ok && mf.GetType() == dto.MetricType_HISTOGRAM {
						base = b
					}
				}
			}
			if _, ok := mfs[base]; !ok {
				t.Errorf("%s is used by the dashboard or the rules but the gateway does not export it", name)
			}
		}
	})
}

// mtWebSocket follows a queue live through the gateway, reads the
// snapshot, calls whileOpen and closes.
func mtWebSocket(t *testing.T, url, bearer string, whileOpen func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {bearer}}})
	if err != nil {
		t.Fatalf("dialing %s: %v", url, err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading the snapshot: %v", err)
	}
	var msg map[string]any
	if err := json.Unmarshal(data, &msg); err != nil || msg["type"] != "snapshot" {
		t.Fatalf("first message %s (%v), want a snapshot", data, err)
	}
	whileOpen()
	_ = c.Close(websocket.StatusNormalClosure, "")
}

// mtIdent matches PromQL identifiers; recorded series (with colons) are
// matched whole so that they can be told apart and skipped.
var mtIdent = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// mtUsedMetrics returns the careq_ metric names used by the expressions of
// the Grafana dashboard and the Prometheus rules.
func mtUsedMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	data, err := os.ReadFile(filepath.Join(repoRoot, "config/grafana/careq-gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("careq-gateway.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	rules, err := filepath.Glob(filepath.Join(repoRoot, "config/prometheus/rules/*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files (%v)", err)
	}
	for _, f := range rules {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []struct {
					Expr string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, r.Expr)
			}
		}
	}
	set := map[string]bool{}
	for _, e := range exprs {
		// Label values in quotes are not metric names.
		e = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(e, `""`)
		for _, id := range mtIdent.FindAllString(e, -1) {
			if strings.HasPrefix(id, "careq_") && !strings.Contains(id, ":") {
				set[id] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMetricsReloadUnderTraffic reloads the config 50 times while a client
// keeps sending requests: the gateway keeps answering, every answer is the
// route's 200, and the counter of the route that never changes only goes up,
// ending at the number of requests it served.
//
// Caddy itself, with no CareQ handler in the route, drops about one request
// in a thousand that races a reload at the connection level (EOF or reset,
// before any response); such drops are allowed, but at most one per reload,
// and a request the client saw dropped may or may not have been counted.
func TestMetricsReloadUnderTraffic(t *testing.T) {
	const reloads = 50
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := func(i int) string {
		return fmt.Sprintf(`
http://%s {
	careq_request_id
	handle /stable {
		careq_metrics stable
		respond "ok"
	}
	handle /changing {
		careq_metrics changing-%d
		respond "version %d"
	}
	handle_errors {
		careq_problem
	}
}
`, addr, i%3, i)
	}
	g := startGateway(t, config(0), addr)

	var served, dropped, wrong atomic.Int64
	var firstWrong atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get("http://" + addr + "/stable")
			if err != nil {
				dropped.Add(1)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "ok" {
				wrong.Add(1)
				firstWrong.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
				continue
			}
			served.Add(1)
		}
	}()

	stableCount := func() float64 {
		v, _ := mtValue(mtParse(t, g.metrics()), "careq_http_requests_total", "route", "stable", "code", "200")
		return v
	}
	last := stableCount()
	for i := 1; i <= reloads; i++ {
		g.reload(config(i))
		now := stableCount()
		if now < last {
			t.Fatalf("after reload %d the stable route's counter went from %v down to %v", i, last, now)
		}
		last = now
	}
	close(stop)
	wg.Wait()

	t.Logf("%d requests served, %d dropped at the connection level during %d reloads", served.Load(), dropped.Load(), reloads)
	if w := wrong.Load(); w != 0 {
		t.Errorf("%d requests got a wrong answer during the reloads (first: %v)", w, firstWrong.Load())
	}
	if d := dropped.Load(); d > reloads {
		t.Errorf("%d requests dropped during %d reloads, want at most one per reload", d, reloads)
	}
	if served.Load() < reloads {
		t.Errorf("only %d requests served during %d reloads", served.Load(), reloads)
	}
	got := stableCount()
	if got < float64(served.Load()) || got > float64(served.Load()+dropped.Load()) {
		t.Errorf("stable route counted %v requests, the client was served %d (and %d dropped)", got, served.Load(), dropped.Load())
	}
	if strings.Contains(g.logs.String(), "panic") {
		t.Errorf("the gateway logged a panic:\n%s", g.logs.String())
	}
}
