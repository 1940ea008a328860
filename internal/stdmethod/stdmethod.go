// Package stdmethod is the one table of the standard HTTP methods the
// gateway recognises (issue #13): careq_methods builds Allow from it,
// careq_auth's per-method rules and careq_metrics' `method` label index it.
package stdmethod

// Names are the standard methods, in Allow order.
var Names = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// Count is the number of standard methods; Index returns it for any other.
const Count = len(Names)

// Index returns the index of m in Names, or Count for a method that is not
// standard (method names are case-sensitive). It allocates nothing.
func Index(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "TRACE":
		return 7
	case "CONNECT":
		return 8
	}
	return Count
}
