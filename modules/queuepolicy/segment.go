package queuepolicy

import (
	"strconv"
	"strings"
)

// pathSegmentPrefix is Caddy's placeholder for one segment of the path.
const pathSegmentPrefix = "http.request.uri.path."

// segmentIndex returns N when placeholder is http.request.uri.path.N, else -1.
func segmentIndex(placeholder string) int {
	s, ok := strings.CutPrefix(placeholder, pathSegmentPrefix)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// pathSegment returns segment n of path, counted from 0 after the leading
// slash, exactly as Caddy's {http.request.uri.path.N} renders it, without
// splitting the path into a new slice.
func pathSegment(path string, n int) string {
	path = strings.TrimPrefix(path, "/")
	for ; n > 0; n-- {
		i := strings.IndexByte(path, '/')
		if i < 0 {
			return ""
		}
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return path
}
