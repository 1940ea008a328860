//go:build race

package chain

// raceEnabled: the race detector's sync.Pool drops a quarter of what is put
// back, on purpose, so pooled workers are made again now and then.
const raceEnabled = true
