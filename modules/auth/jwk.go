package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// jwk is one JSON Web Key (RFC 7517); only public signature keys are read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseJWKS reads a key set. Keys that are not public signature keys
// (symmetric "oct" keys included: a key server never hands out HMAC secrets)
// are skipped; a set with no usable key is an error.
func parseJWKS(data []byte) ([]*verKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	var keys []*verKey
	for _, k := range doc.Keys {
		if len(keys) == jwksMaxKeys {
			break
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Alg != "" {
			if _, ok := algorithms[k.Alg]; !ok {
				continue
			}
		}
		vk, err := k.key()
		if err != nil {
			continue
		}
		if vk.alg != "" && !vk.accepts(vk.alg, algorithms[vk.alg]) {
			continue // e.g. an RSA key labelled ES256
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, errors.New("key set holds no usable signature key")
	}
	return keys, nil
}

func (k jwk) key() (*verKey, error) {
	if k.D != "" {
		return nil, errors.New("private key in a key set")
	}
	var vk *verKey
	var err error
	switch k.Kty {
	case "RSA":
		n, e := b64int(k.N), b64int(k.E)
		if n == nil || e == nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA key")
		}
		vk, err = publicKey(&rsa.PublicKey{N: n, E: int(e.Int64())})
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		// RFC 7518 §6.2.1: each coordinate is exactly the curve's size.
		size := (curve.Params().BitSize + 7) / 8
		x, xerr := b64.DecodeString(k.X)
		y, yerr := b64.DecodeString(k.Y)
		if xerr != nil || yerr != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC key")
		}
		// The parser refuses a point that is not on the curve.
		pub, perr := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if perr != nil {
			return nil, perr
		}
		vk, err = publicKey(pub)
	case "OKP":
		x, derr := b64.DecodeString(k.X)
		if k.Crv != "Ed25519" || derr != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		vk, err = publicKey(ed25519.PublicKey(x))
	default:
		return nil, errors.New("unsupported key type")
	}
	if err != nil {
		return nil, err
	}
	vk.kid, vk.alg = k.Kid, k.Alg
	return vk, nil
}

func b64int(s string) *big.Int {
	b, err := b64.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
