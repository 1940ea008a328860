package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
)

// maxAPIKeyLen bounds a presented API key.
const maxAPIKeyLen = 256

// apiKey is one line of the API key file.
type apiKey struct {
	id      string
	revoked bool
	ident   *identity
}

// apiKeys maps the SHA-256 of each key to its entry. Only hashes are held,
// so a leaked config or memory dump does not reveal a usable key.
//
// Lookup hashes the presented key and indexes the map with the digest. The
// time this takes depends on the digest only, and an attacker who cannot
// invert SHA-256 learns nothing from it about stored digests, so no
// per-byte comparison of secrets ever happens (the property constant-time
// comparison protects); and it is O(1) in the number of keys.
type apiKeys map[[sha256.Size]byte]*apiKey

// lookup returns the entry for a presented key, or nil.
func (ks apiKeys) lookup(presented string) *apiKey {
	return ks[sha256.Sum256([]byte(presented))]
}

// parseAPIKeys reads an API key file. Each line is
//
//	<id> <sha256-hex-of-key> <scope>[,<scope>...] [revoked]
//
// with "-" for no scopes; "#" starts a comment; blank lines are skipped.
// Ids and digests must be unique.
func parseAPIKeys(data []byte) (apiKeys, error) {
	ks := make(apiKeys)
	ids := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("line %d: want '<id> <sha256-hex> <scopes> [revoked]', got %d fields", line, len(f))
		}
		id := f[0]
		if !validClaimName(id) {
			return nil, fmt.Errorf("line %d: invalid id %q: use letters, digits, _ - : (at most %d)", line, id, maxClaimNameLen)
		}
		if ids[id] {
			return nil, fmt.Errorf("line %d: id %q already used", line, id)
		}
		sum, err := hex.DecodeString(f[1])
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("line %d: key %q: the second field must be the 64 hex digits of the key's SHA-256", line, id)
		}
		var digest [sha256.Size]byte
		copy(digest[:], sum)
		if _, dup := ks[digest]; dup {
			return nil, fmt.Errorf("line %d: key %q: same key digest as an earlier line", line, id)
		}
		var scopes []string
		if f[2] != "-" {
			for _, s := range strings.Split(f[2], ",") {
				if s == "" {
					return nil, fmt.Errorf("line %d: key %q: empty scope in %q", line, id, f[2])
				}
				scopes = append(scopes, s)
			}
		}
		if len(scopes) > maxScopes {
			return nil, fmt.Errorf("line %d: key %q: more than %d scopes", line, id, maxScopes)
		}
		revoked := false
		if len(f) == 4 {
			if f[3] != "revoked" {
				return nil, fmt.Errorf("line %d: key %q: unknown marker %q, want 'revoked'", line, id, f[3])
			}
			revoked = true
		}
		ids[id] = true
		ks[digest] = &apiKey{id: id, revoked: revoked, ident: (&identity{
			kind:    allowedAPIKey,
			user:    id,
			scopes:  scopes,
			expires: math.MaxInt64,
		}).seal()}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ks, nil
}

// validAPIKey reports whether a presented key is well formed: 1 to 256
// visible ASCII characters.
func validAPIKey(k string) bool {
	if k == "" || len(k) > maxAPIKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}
