// Command client sends a fixed number of requests to one URL over a few
// keep-alive connections and prints how many got each status: the load of
// bench/issue17/instructions, which counts the gateway's instructions for
// exactly that many requests.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
)

func main() {
	url := flag.String("url", "", "the URL to GET (loopback only)")
	n := flag.Int("n", 1000, "requests in all")
	conns := flag.Int("c", 4, "connections, each sending its share in turn")
	token := flag.String("token", "", "bearer token (none: no Authorization header)")
	flag.Parse()
	if !strings.HasPrefix(*url, "http://127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "client: -url must be http://127.0.0.1:<port>/…")
		os.Exit(2)
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns}}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; i < *n; i += *conns {
				req, _ := http.NewRequest(http.MethodGet, *url, nil)
				if *token != "" {
					req.Header.Set("Authorization", "Bearer "+*token)
				}
				resp, err := cl.Do(req)
				if err != nil {
					fmt.Fprintln(os.Stderr, "client:", err)
					os.Exit(1)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	var keys []int
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		fmt.Printf("%d:%d ", k, codes[k])
	}
	fmt.Println()
}
