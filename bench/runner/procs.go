package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// Helpers of the displays run that look at or act on the processes: their
// memory, profiles, reloads and descriptor limits.

// memOf returns pid's resident size and the Go heap in use after a
// collection (the admin API's heap profile collects first).
func memOf(pid int, admin string) (rss, heap int64) {
	rss, heap, _ = memStacks(pid, admin)
	return rss, heap
}

var stackLine = regexp.MustCompile(`(?m)^go_memstats_stack_inuse_bytes ([0-9.e+]+)$`)

// memStacks is memOf with the goroutine stacks in use.
func memStacks(pid int, admin string) (rss, heap, stacks int64) {
	// Three collections: the runtime shrinks an idle goroutine's stack by
	// at most half per collection, as a gateway running for a while has.
	for range 3 {
		if resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := heapLine.FindSubmatch(b); m != nil {
			f, _ := strconv.ParseFloat(string(m[1]), 64)
			heap = int64(f)
		}
		if m := stackLine.FindSubmatch(b); m != nil {
			f, _ := strconv.ParseFloat(string(m[1]), 64)
			stacks = int64(f)
		}
	}
	return vmRSS(pid), heap, stacks
}

// saveProfile keeps a profile of the gateway with the displays open, for
// `go tool pprof bench/out/careq-gateway bench/out/displays-heap.pprof`.
func saveProfile(admin, name, file string) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/" + name)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(file, b, 0o644)
}

// waitListen waits until something listens on addr.
func waitListen(addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// forceReload loads the running config again through the admin API.
func forceReload(admin string) error {
	resp, err := http.Get("http://" + admin + "/config/")
	if err != nil {
		return err
	}
	cfg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", bytes.NewReader(cfg))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even though unchanged
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload: %d %s", resp.StatusCode, b)
	}
	return nil
}

// raiseNoFile raises this process's open-file limit (and so its
// children's) to at least n, as far as it may.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := lim
	want.Cur = n
	if want.Max < n {
		want.Max = n // needs CAP_SYS_RESOURCE; else the soft limit goes to the hard one
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want.Cur, want.Max = lim.Max, lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return err
		}
		if want.Cur < n {
			return fmt.Errorf("open-file limit %d is below the %d this run needs (raise the hard limit, or run fewer displays)", want.Cur, n)
		}
	}
	return nil
}
