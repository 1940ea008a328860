package careq_test

// End-to-end tests of the ops status page (issue #19): the real gateway
// binary, real queue backends (careq_backend), and Debian's chromium
// driven through chromedp.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// stHMACSecret signs the tokens of the status test's HMAC route; it must
// never appear on the status page.
const stHMACSecret = "status-page-test-hmac-secret-0123456789abcdef"

// stKioskKey is a development API key (config/dev/api-keys.txt: kiosk-dev).
const stKioskKey = "careq-dev-kiosk-key"

type stEnv struct {
	g        *gateway
	gw       string // the gateway's listener
	status   string // the careq_status site
	replicas []string
	token    string // an HMAC token of caller clinic-7-kiosk
	redis    *rlRedis
}

// stStart starts a gateway with two replicas behind a per-replica breaker
// and careq_queue, an HMAC-JWT and API-key auth, a rate limit of 2 per
// minute per caller, a zone shared through a real redis-server, and a caps.
func stStart(t *testing.T) *stEnv {
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a, b := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	st := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	rd := rlStartRedis(t)
	cfg := fmt.Sprintf(`{
	auto_https off
}

http://%s {
	bind 127.0.0.1
	careq_status
}

http://%s {
	careq_request_id
	handle_errors {
		careq_problem
	}
	@api path_regexp api ^/api/v1/queues/([^/]+)
	route @api {
		careq_metrics queues
		careq_auth {
			jwt {
				secret %s
				issuer careq-auth
				audience careq-api
			}
			api_key {
				file config/dev/api-keys.txt
			}
		}
		careq_ratelimit shared {
			key           {http.auth.user.id}
			rate          100/s
			redis         %s
			redis_timeout 200ms
		}
		careq_ratelimit kiosks {
			key  {http.auth.user.id}
			rate 2/m
		}
		careq_caps kiosk-caps {
			requests 20
		}
		careq_idempotency {
			redis         %s
			redis_timeout 200ms
		}
		careq_breaker queues {
			consecutive_failures 3
			open_for 1m
			per_replica
		}
		reverse_proxy %s %s {
			lb_policy careq_queue {re.api.1} strict {
				breaker queues
			}
		}
	}
}

http://%s {
	careq_backend replica-a
}

http://%s {
	careq_backend replica-b
}
`, st, gw, stHMACSecret, rd.addr(), rd.addr(), a, b, a, b)
	g := startGateway(t, cfg, st, gw, a, b)
	tok := authMint(t, "--sub", "clinic-7-kiosk", "--scopes", "queue:read queue:write", "--secret", stHMACSecret,
		"--issuer", "careq-auth", "--audience", "careq-api", "--ttl", "10m")
	return &stEnv{g: g, gw: gw, status: st, replicas: []string{a, b}, token: tok, redis: rd}
}

// owner is the replica that owns queue, by the published formula.
func (e *stEnv) owner(queue string) string {
	best, bestScore := "", uint64(0)
	for _, r := range e.replicas {
		if s := xxhash.Sum64String(r + "\x00" + queue); best == "" || s > bestScore || (s == bestScore && r < best) {
			best, bestScore = r, s
		}
	}
	return best
}

func (e *stEnv) queueGet(t *testing.T, queue string, hdr ...string) int {
	t.Helper()
	resp, _ := get(t, "http://"+e.gw+"/api/v1/queues/"+queue+"/tickets", hdr...)
	return resp.StatusCode
}

func (e *stEnv) adminPost(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post("http://"+e.g.admin+path, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
}

// breaker returns the admin API's view of one breaker.
func (e *stEnv) breaker(t *testing.T, name string) map[string]any {
	t.Helper()
	code, body := e.g.adminGet("/careq/breakers/" + name)
	var list []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) == 0 {
		t.Fatalf("GET breaker %s: %d %s", name, code, body)
	}
	return list[0]
}

// stBrowser starts a headless chromium of its own (killed when the test
// ends) and returns a tab and the console errors seen so far. It skips the
// test when chromium is not installed, unless CI is set.
func stBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed, and CI=true: scripts/test installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed: skipping the browser test (apt-get install chromium; scripts/test does)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs = append(errs, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			errs = append(errs, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				errs = append(errs, "log "+string(ev.Entry.Level)+": "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// stEval evaluates a JavaScript expression in the page.
func stEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// stWait evaluates expr (a JavaScript boolean) until it is true or
// within has passed, and returns how long that took.
func stWait(t *testing.T, ctx context.Context, what, expr string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.querySelector('main').innerText"))
			t.Fatalf("%s: not shown within %s (err %v); page:\n%s", what, within, err, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stStateJS is the state the page shows for a breaker.
func stStateJS(name string) string {
	return fmt.Sprintf(`((document.querySelector('tr[data-breaker=%q] td[data-state]') || {}).textContent || '')`, name)
}

// stClick clicks the page's button for action on breaker name, then the
// confirmation dialog's button (ok or cancel), with the keyboard when
// keyboard is set.
func stClick(t *testing.T, ctx context.Context, name, action string, confirm bool, keyboard bool) {
	t.Helper()
	btn := fmt.Sprintf(`tr[data-breaker=%q] button[data-action=%q]`, name, action)
	var steps []chromedp.Action[chromedp.Void]
	if keyboard {
		steps = append(steps, chromedp.Focus(chromedp.CSS(btn)), chromedp.KeyEvent("\r"))
	} else {
		steps = append(steps, chromedp.Click(chromedp.CSS(btn)))
	}
	steps = append(steps, chromedp.WaitVisible(chromedp.ID("confirm")))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("pressing %s on %s: %v", action, name, err)
	}
	if got := stEval[string](t, ctx, `document.getElementById('confirm-text').textContent`); !strings.Contains(got, name) {
		t.Fatalf("confirmation for %s %s says %q", action, name, got)
	}
	target := "confirm-cancel"
	if confirm {
		target = "confirm-ok"
	}
	var err error
	if keyboard {
		// The dialog focuses Cancel; Tab moves to Confirm.
		keys := "\r"
		if confirm {
			keys = "\t\r"
		}
		err = chromedp.Do(ctx, chromedp.KeyEvent(keys))
	} else {
		err = chromedp.Do(ctx, chromedp.Click(chromedp.ID(target)))
	}
	if err != nil {
		t.Fatalf("answering the confirmation: %v", err)
	}
}

// TestStatusPageE2E drives the status page in chromium against the real
// binary: it loads without console errors, shows a breaker opened through
// the admin API within 2 s, its force/release buttons work (with
// confirmation, by mouse and by keyboard), the queue-owner box answers, a
// tripped rate limit shows its caller, and no secret or token appears in
// the page or its JSON; Redis going down shows as the fallback.
func TestStatusPageE2E(t *testing.T) {
	ctx, consoleErrors := stBrowser(t)
	e := stStart(t)
	queue := "clinic-7-main"
	owner := e.owner(queue)
	if code := e.queueGet(t, queue, "X-API-Key", stKioskKey); code != 200 {
		t.Fatalf("queue %s with the kiosk API key: %d", queue, code)
	}
	// Caddy's admin API refuses a browser's top-level navigation (no
	// Origin or Referer): the browser opens the careq_status site, which
	// serves the same page; the admin API serves it to other clients.
	if code, body := e.g.adminGet("/careq/"); code != 200 || !strings.Contains(body, "<title>CareQ Gateway status</title>") {
		t.Fatalf("GET admin /careq/: %d %.200s", code, body)
	}
	page := "http://" + e.status + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("loading %s: %v", page, err)
	}
	stWait(t, ctx, "first update", `document.getElementById('live').textContent.startsWith('Live')`, 5*time.Second)

	t.Run("breaker opened through the admin API shows within 2s", func(t *testing.T) {
		name := "queues@" + owner
		e.adminPost(t, "/careq/breakers/"+name+"/open")
		took := stWait(t, ctx, "breaker "+name+" open", stStateJS(name)+` === 'open'`, 2*time.Second)
		t.Logf("breaker shown open %v after the admin call", took.Round(time.Millisecond))
		if held := stEval[string](t, ctx, fmt.Sprintf(`document.querySelector('tr[data-breaker=%q]').innerText`, name)); !strings.Contains(held, "held open") {
			t.Errorf("row of %s does not say it is held open: %q", name, held)
		}
		if code := e.queueGet(t, queue, "X-API-Key", stKioskKey); code != 503 {
			t.Errorf("queue %s with its owner's breaker held open: %d, want 503", queue, code)
		}
	})

	t.Run("release button, confirmed", func(t *testing.T) {
		name := "queues@" + owner
		stClick(t, ctx, name, "release", true, false)
		stWait(t, ctx, "breaker "+name+" closed", stStateJS(name)+` === 'closed'`, 2*time.Second)
		if b := e.breaker(t, name); b["state"] != "closed" || b["forced"] != nil {
			t.Errorf("after Release: admin API shows %v, want closed and not forced", b)
		}
	})

	t.Run("force open by keyboard, cancel changes nothing", func(t *testing.T) {
		name := "queues@" + owner
		stClick(t, ctx, name, "open", false, true)
		time.Sleep(300 * time.Millisecond)
		if b := e.breaker(t, name); b["state"] != "closed" {
			t.Fatalf("after Cancel: admin API shows %v, want still closed", b)
		}
		stClick(t, ctx, name, "open", true, true)
		stWait(t, ctx, "breaker "+name+" open", stStateJS(name)+` === 'open'`, 2*time.Second)
		if b := e.breaker(t, name); b["state"] != "open" || b["forced"] != "open" {
			t.Errorf("after Force open: admin API shows %v, want open, forced open", b)
		}
		stClick(t, ctx, name, "close", true, false)
		stWait(t, ctx, "breaker "+name+" closed", stStateJS(name)+` === 'closed'`, 2*time.Second)
		if b := e.breaker(t, name); b["forced"] != "closed" {
			t.Errorf("after Force closed: admin API shows %v, want forced closed", b)
		}
		stClick(t, ctx, name, "release", true, false)
	})

	t.Run("queue-owner box", func(t *testing.T) {
		for _, q := range []string{queue, "clinic-9-xray"} {
			stEval[bool](t, ctx, `(document.getElementById('queue').value = '') === ''`)
			// Typed, then submitted with Enter, as a keyboard user would.
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("queue"), q+"\r")); err != nil {
				t.Fatalf("asking the owner of %s: %v", q, err)
			}
			want := e.owner(q)
			stWait(t, ctx, "owner of "+q, fmt.Sprintf(`[...document.querySelectorAll('#owner p[data-owner]')].some(p => p.dataset.owner === %q && p.textContent.includes('Queue %s ') && p.textContent.includes('Requests reach %s'))`, want, q, want), 3*time.Second)
		}
	})

	t.Run("tripped rate limit shows its caller", func(t *testing.T) {
		auth := "Bearer " + e.token
		codes := []int{}
		for i := 0; i < 4; i++ {
			codes = append(codes, e.queueGet(t, queue, "Authorization", auth))
		}
		if codes[len(codes)-1] != 429 {
			t.Fatalf("4 requests at 2/m: %v, want the last refused 429", codes)
		}
		stWait(t, ctx, "clinic-7-kiosk among the refused", `document.getElementById('limits').innerText.includes('clinic-7-kiosk (2)')`, 2*time.Second)
	})

	t.Run("no secret or token on the page or in its JSON", func(t *testing.T) {
		// Failed attempts too: a bad token and an unknown key.
		e.queueGet(t, queue, "Authorization", "Bearer "+e.token+"x")
		e.queueGet(t, queue, "X-API-Key", "careq-not-a-key-0123")
		time.Sleep(1200 * time.Millisecond)
		code, js := e.g.adminGet("/careq/status.json")
		if code != 200 {
			t.Fatalf("status.json: %d", code)
		}
		html := stEval[string](t, ctx, `document.documentElement.outerHTML`)
		for _, s := range []string{e.token, strings.Split(e.token, ".")[2], stKioskKey, "careq-not-a-key-0123", stHMACSecret,
			"6c6a3ad2f2b98e014b9ff2fcdee1724611049bfc0baa9b0b110c14a6507fcc4c"} {
			if strings.Contains(js, s) {
				t.Errorf("status.json contains the secret %q", s)
			}
			if strings.Contains(html, s) {
				t.Errorf("the page contains the secret %q", s)
			}
		}
		for _, s := range []string{"clinic-7-kiosk", "queues@" + owner, "hmac secret"} {
			if !strings.Contains(js, s) {
				t.Errorf("status.json lacks %q (the test would not see a leak): %s", s, js)
			}
		}
	})

	t.Run("careq_status takes breaker actions only from its own page", func(t *testing.T) {
		name := "queues@" + owner
		for _, origin := range []string{"", "http://evil.example", "http://127.0.0.1:1"} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.status+"/breakers/"+name+"/open", nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			if resp, body := do(t, req); resp.StatusCode != 403 {
				t.Errorf("POST breaker action with Origin %q: %d %s, want 403", origin, resp.StatusCode, body)
			}
		}
		if b := e.breaker(t, name); b["state"] != "closed" {
			t.Errorf("after refused actions: %v, want still closed", b)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.status+"/breakers/"+name+"/open", nil)
		if resp, _ := do(t, req); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET on a breaker action: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})

	t.Run("Redis reachable, then down with the fallback active", func(t *testing.T) {
		stWait(t, ctx, "Redis reachable", `document.getElementById('summary').innerText.includes('Redis reachable')`, 2*time.Second)
		// A keyed ticket goes through the idempotency store on the same Redis.
		nurse := authMint(t, "--sub", "clinic-7-nurse", "--scopes", "queue:read queue:write", "--secret", stHMACSecret,
			"--issuer", "careq-auth", "--audience", "careq-api", "--ttl", "10m")
		post := func(key string) int {
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.gw+"/api/v1/queues/"+queue+"/tickets", strings.NewReader(`{"patient":"`+key+`"}`))
			req.Header.Set("Authorization", "Bearer "+nurse)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, _ := do(t, req)
			return resp.StatusCode
		}
		if c := post("status-before"); c != http.StatusCreated {
			t.Fatalf("keyed POST with Redis up: %d, want 201", c)
		}
		stWait(t, ctx, "idempotency store reachable", `document.getElementById('idempotency').innerText.includes('reachable')`, 2*time.Second)
		e.redis.stop()
		e.queueGet(t, queue, "X-API-Key", stKioskKey)
		took := stWait(t, ctx, "Redis fallback", `document.getElementById('summary').innerText.includes('Redis unreachable, local fallback active: shared')`, 2*time.Second)
		t.Logf("Redis outage shown %v after the request that met it", took.Round(time.Millisecond))
		if c := post("status-after"); c != http.StatusCreated {
			t.Errorf("keyed POST with Redis down (redis_down pass): %d, want 201", c)
		}
		stWait(t, ctx, "idempotency store unreachable", `document.getElementById('summary').innerText.includes('Idempotency store unreachable: `+e.redis.addr()+`')`, 2*time.Second)
	})

	t.Run("refusals of the last minute", func(t *testing.T) {
		stWait(t, ctx, "rate-limited refusals by cause", `document.getElementById('by-cause').innerText.includes('rate-limited')`, 3*time.Second)
		stWait(t, ctx, "refusals by route", `document.getElementById('by-route').innerText.includes('queues')`, 3*time.Second)
	})

	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors while the page ran:\n%s", strings.Join(errs, "\n"))
	}
	if dir := os.Getenv("CAREQ_SCREENSHOTS"); dir != "" {
		stScreenshots(t, ctx, e, dir)
	}
}

// stScreenshots writes the page at desktop and phone width (run by
// scripts/screenshots), with one breaker held open so the page shows one.
func stScreenshots(t *testing.T, ctx context.Context, e *stEnv, dir string) {
	e.adminPost(t, "/careq/breakers/queues@"+e.replicas[0]+"/open")
	for _, shot := range []struct {
		file          string
		width, height int64
		mobile        bool
	}{{"status-desktop.png", 1280, 900, false}, {"status-phone.png", 390, 844, true}} {
		var vp []chromedp.EmulateViewportOption
		if shot.mobile {
			vp = append(vp, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(shot.width, shot.height, vp...), chromedp.Sleep(1500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, shot.file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stAuthSection returns the auth section of the admin API's status.json.
func stAuthSection(t *testing.T, g *gateway) []map[string]any {
	t.Helper()
	code, body := g.adminGet("/careq/status.json")
	var doc struct {
		Auth []map[string]any `json:"auth"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || len(doc.Auth) != 1 {
		t.Fatalf("status.json: %d %s, want one auth handler", code, body)
	}
	return doc.Auth
}

// TestStatusJSONShowsTheKeyServer: the status JSON names the key set's key
// ids and the last JWKS fetch, failed while the key server is down and
// ok once it answers (a real key server process).
func TestStatusJSONShowsTheKeyServer(t *testing.T) {
	ks := newKeyServer(t)
	ks.serve("dev-es256")
	_, down := jwksGateway(t, ks)
	a := stAuthSection(t, down)[0]
	last, _ := a["last_fetch"].(map[string]any)
	if a["jwt_key"] != "jwks" || a["jwks_healthy"] == true || last == nil || last["ok"] != false || last["error"] == "" {
		t.Errorf("key server down: auth %v, want jwks, unhealthy, last fetch failed with its error", a)
	}
	ks.start()
	_, up := jwksGateway(t, ks)
	a = stAuthSection(t, up)[0]
	last, _ = a["last_fetch"].(map[string]any)
	kids, _ := a["jwks_keys"].([]any)
	if a["jwks_healthy"] != true || last == nil || last["ok"] != true || len(kids) != 1 || kids[0] != "dev-es256" {
		t.Errorf("key server up: auth %v, want healthy, last fetch ok, key ids [dev-es256]", a)
	}
	if a["jwks_url"] != ks.url() {
		t.Errorf("jwks_url %v, want %s", a["jwks_url"], ks.url())
	}
}
