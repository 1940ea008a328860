package admission

import (
	"runtime"
	"syscall"
	"testing"
)

// cpuPerOp reports the CPU time the benchmark's own thread spent per
// iteration as cpu-ns/op, next to ns/op: on a shared machine ns/op counts
// the time the thread waited for a core, CPU time does not. Call it before
// the loop and defer what it returns.
func cpuPerOp(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU()
	return func() {
		used := threadCPU() - start
		runtime.UnlockOSThread()
		if b.N > 0 {
			b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
		}
	}
}

// threadCPU is the calling thread's user and system time, in nanoseconds.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
