package listener

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// goingAway counts the tunnels being told "going away"; the process exit
// waits for them, up to goAwayExitWait.
var goingAway sync.WaitGroup

// goAwayExitWait bounds how long the exit waits for close frames.
const goAwayExitWait = 2 * time.Second

var watchOnce sync.Once

// startWatching, on the first careq listener, makes the process stop
// accepting on the sockets it inherited (socket activation) the moment it
// is told to stop (SIGTERM, SIGINT), before Caddy begins its graceful
// shutdown: what the kernel queues on them from then on waits for the next
// process. Sockets the process bound itself go on accepting until Caddy
// closes them (shutdown_delay), since closing them resets what is queued.
// It also makes the exit wait for the going-away frames.
func startWatching() {
	watchOnce.Do(func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			poolMu.Lock()
			for _, s := range pool {
				if s.adopted {
					s.pause()
				}
			}
			poolMu.Unlock()
		}()
		caddy.OnExit(func(context.Context) {
			shutdownLast()
			done := make(chan struct{})
			go func() { goingAway.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(goAwayExitWait):
			}
		})
	})
}
