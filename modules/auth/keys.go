package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
)

// family is the kind of a key. An algorithm is only ever checked with a key
// of its own family, so an HMAC secret can never verify an RSA- or EC-signed
// header, nor a public key an HMAC one (algorithm confusion).
type family uint8

const (
	famHMAC family = iota + 1
	famRSA
	famRSAPSS
	famEC
	famEd25519
)

// algInfo says how an algorithm verifies.
type algInfo struct {
	fam   family
	hash  crypto.Hash
	curve elliptic.Curve // famEC only
}

// algorithms lists every algorithm the gateway can verify. "none" is not
// here and can never be allowed.
var algorithms = map[string]algInfo{
	"HS256":   {famHMAC, crypto.SHA256, nil},
	"HS384":   {famHMAC, crypto.SHA384, nil},
	"HS512":   {famHMAC, crypto.SHA512, nil},
	"RS256":   {famRSA, crypto.SHA256, nil},
	"RS384":   {famRSA, crypto.SHA384, nil},
	"RS512":   {famRSA, crypto.SHA512, nil},
	"PS256":   {famRSAPSS, crypto.SHA256, nil},
	"PS384":   {famRSAPSS, crypto.SHA384, nil},
	"PS512":   {famRSAPSS, crypto.SHA512, nil},
	"ES256":   {famEC, crypto.SHA256, elliptic.P256()},
	"ES384":   {famEC, crypto.SHA384, elliptic.P384()},
	"ES512":   {famEC, crypto.SHA512, elliptic.P521()},
	"EdDSA":   {famEd25519, 0, nil},
	"Ed25519": {famEd25519, 0, nil},
}

// knownAlgorithm accepts the algorithms the gateway verifies.
func knownAlgorithm(a string) error {
	if _, ok := algorithms[a]; !ok {
		return errors.New("not one the gateway verifies ('none' never is)")
	}
	return nil
}

// knownAlgorithms returns the names in algorithms, sorted, for messages.
func knownAlgorithms() []string {
	names := make([]string, 0, len(algorithms))
	for n := range algorithms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// minRSABits refuses RSA keys too short to be trusted (NIST SP 800-131A).
const minRSABits = 2048

// minSecretLen is the shortest HMAC secret accepted: RFC 7518 §3.2 asks for a
// key at least as long as the hash output, 32 bytes for HS256.
const minSecretLen = 32

// verKey is one key that can verify tokens.
type verKey struct {
	kid    string
	alg    string // a JWK's "alg": when set, the only algorithm it verifies
	secret []byte // famHMAC
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
	ed     ed25519.PublicKey
	// revoked is set when the key leaves its JWKS: tokens it verified are
	// no longer taken from the cache.
	revoked atomic.Bool
}

// same reports whether k and o are the same key: same kid, alg and
// public key material.
func (k *verKey) same(o *verKey) bool {
	if k.kid != o.kid || k.alg != o.alg {
		return false
	}
	switch {
	case k.rsa != nil:
		return o.rsa != nil && k.rsa.Equal(o.rsa)
	case k.ec != nil:
		return o.ec != nil && k.ec.Equal(o.ec)
	case k.ed != nil:
		return o.ed != nil && k.ed.Equal(o.ed)
	case k.secret != nil:
		return o.secret != nil && string(k.secret) == string(o.secret)
	}
	return false
}

// family returns the algorithm family the key belongs to. An RSA key serves
// both RS* and PS*, which accepts reports separately.
func (k *verKey) family() family {
	switch {
	case k.secret != nil:
		return famHMAC
	case k.rsa != nil:
		return famRSA
	case k.ec != nil:
		return famEC
	case k.ed != nil:
		return famEd25519
	}
	return 0
}

// accepts reports whether k may verify a token signed with alg.
func (k *verKey) accepts(alg string, info algInfo) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch info.fam {
	case famHMAC:
		return k.secret != nil
	case famRSA, famRSAPSS:
		return k.rsa != nil
	case famEC:
		return k.ec != nil && k.ec.Curve == info.curve
	case famEd25519:
		return k.ed != nil
	}
	return false
}

// defaultAlgorithms returns the algorithms a key verifies when none are
// configured.
func (k *verKey) defaultAlgorithms() []string {
	switch k.family() {
	case famHMAC:
		return []string{"HS256", "HS384", "HS512"}
	case famRSA:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case famEC:
		switch k.ec.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case famEd25519:
		return []string{"EdDSA", "Ed25519"}
	}
	return nil
}

// asymmetricAlgorithms are the defaults for a JWKS: every public-key
// algorithm, never an HMAC one.
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

// publicKeyParsers read the public key PEM blocks parsePublicKeyPEM takes,
// by block type.
var publicKeyParsers = map[string]func([]byte) (any, error){
	"PUBLIC KEY":     x509.ParsePKIXPublicKey,
	"RSA PUBLIC KEY": func(der []byte) (any, error) { return x509.ParsePKCS1PublicKey(der) },
	"CERTIFICATE": func(der []byte) (any, error) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	},
}

// parsePEM decodes the first PEM block of data and reads it with the
// parser for its type; what names the kind of block wanted in the error
// for any other type.
func parsePEM(data []byte, parsers map[string]func([]byte) (any, error), what string) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	parse, ok := parsers[block.Type]
	if !ok {
		return nil, fmt.Errorf("PEM block type %q is not %s", block.Type, what)
	}
	return parse(block.Bytes)
}

// privateKeyParsers read the private key PEM blocks parsePrivateKeyPEM
// takes, by block type.
var privateKeyParsers = map[string]func([]byte) (any, error){
	"PRIVATE KEY":     x509.ParsePKCS8PrivateKey,
	"EC PRIVATE KEY":  func(der []byte) (any, error) { return x509.ParseECPrivateKey(der) },
	"RSA PRIVATE KEY": func(der []byte) (any, error) { return x509.ParsePKCS1PrivateKey(der) },
}

// parsePrivateKeyPEM reads a PKCS#8, SEC 1 (EC) or PKCS#1 (RSA) private key.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	key, err := parsePEM(data, privateKeyParsers, "a private key")
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return s, nil
}

// parsePublicKeyPEM reads the first PEM block of data as a public key (PKIX
// "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY", or a certificate).
func parsePublicKeyPEM(data []byte) (*verKey, error) {
	pub, err := parsePEM(data, publicKeyParsers, "a public key (a private key must never be configured here)")
	if err != nil {
		return nil, err
	}
	return publicKey(pub)
}

// publicKey wraps a parsed public key, refusing weak or unknown ones.
func publicKey(pub any) (*verKey, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want at least %d", p.N.BitLen(), minRSABits)
		}
		return &verKey{rsa: p}, nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return &verKey{ec: p}, nil
		}
		return nil, fmt.Errorf("unsupported elliptic curve %s", p.Curve.Params().Name)
	case ed25519.PublicKey:
		return &verKey{ed: p}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}
