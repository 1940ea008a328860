package listener

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func TestIsWebSocketUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want bool
	}{
		{"websocket", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", true},
		{"header case", "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\r\n", true},
		{"other protocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false},
		{"200", "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n\r\n", false},
		{"upgrade in the body only", "HTTP/1.1 101 Switching Protocols\r\nX: y\r\n\r\nupgrade: websocket", false},
		{"short", "HTTP/1.1 10", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := isWebSocketUpgrade([]byte(tt.in)); got != tt.want {
				t.Errorf("isWebSocketUpgrade(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// frame builds an unmasked server frame with an n-byte payload.
func frame(n int) []byte {
	b := []byte{0x81}
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, bytes.Repeat([]byte{'x'}, n)...)
}

func TestFramesBoundaries(t *testing.T) {
	stream := append(append(append(frame(5), frame(300)...), frame(70000)...), frame(0)...)
	ends := map[int]bool{}
	pos := 0
	for _, n := range []int{len(frame(5)), len(frame(300)), len(frame(70000)), len(frame(0))} {
		pos += n
		ends[pos] = true
	}
	for _, chunk := range []int{1, 3, 7, 1000, len(stream)} {
		var f frames
		for i := 0; i < len(stream); i += chunk {
			j := min(i+chunk, len(stream))
			f.track(stream[i:j])
			if got := f.atBoundary(); got != ends[j] {
				t.Fatalf("chunks of %d: after %d bytes atBoundary = %v, want %v", chunk, j, got, ends[j])
			}
		}
	}
}

// TestGoAwayWaitsForTheFrameBoundary: the close frame is written after the
// frame being written, never inside it.
func TestGoAwayWaitsForTheFrameBoundary(t *testing.T) {
	g, port := openGen(t, 0)
	client := dial(t, port)
	sc := acceptWithin(t, g, 2*time.Second).(*conn)
	if _, err := sc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	f := frame(10)
	if _, err := sc.Write(f[:5]); err != nil { // half a frame
		t.Fatal(err)
	}
	g.Close() // the process exits: its conns drain
	done := make(chan struct{})
	go func() { sc.goAway(); close(done) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := sc.Write(f[5:]); err != nil {
		t.Fatalf("finishing the frame: %v", err)
	}
	<-done
	_ = client.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("reading the tunnel: %v", err)
	}
	_, rest, _ := bytes.Cut(got, []byte("\r\n\r\n"))
	want := append(append([]byte{}, f...), goingAwayFrame...)
	if !bytes.Equal(rest, want) {
		t.Fatalf("tunnel bytes = %x, want the frame then the close frame %x", rest, want)
	}
	if _, err := sc.Write([]byte("x")); err == nil {
		t.Fatalf("a write after going away succeeded")
	}
}
