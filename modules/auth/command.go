package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/golang-jwt/jwt/v5"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "token",
		Usage: "--sub <id> [--scopes <scopes>] [--ttl <duration>] (--key <pem-file> | --secret <secret>) [--kid <kid>] [--issuer <iss>] [--audience <aud>] [--alg <alg>]",
		Short: "Mints a development JWT for careq_auth",
		Long: `
Mints a signed JWT and prints it, for development and tests. Sign with a PEM
private key (--key: RSA, ECDSA or Ed25519) or an HMAC secret (--secret, which
may be a placeholder such as {env.CAREQ_JWT_SECRET}). The algorithm follows the
key unless --alg is given. --scopes takes scopes separated by spaces or commas
and puts them in the "scope" claim, space-separated.

Never use this for production credentials: tokens should come from your
identity provider.`,
		Flags: tokenFlags(),
		Func:  cmdToken,
	})
}

func tokenFlags() *flag.FlagSet {
	f := flag.NewFlagSet("token", flag.ExitOnError)
	f.String("sub", "", "Subject (user id) of the token")
	f.String("scopes", "", "Scopes, separated by spaces or commas")
	f.Duration("ttl", time.Hour, "Time to live")
	f.String("key", "", "PEM private key file to sign with")
	f.String("secret", "", "HMAC secret to sign with")
	f.String("kid", "", "Key id header")
	f.String("issuer", "", "Issuer (iss claim)")
	f.String("audience", "", "Audience (aud claim)")
	f.String("alg", "", "Signing algorithm (default: the key's)")
	return f
}

func cmdToken(fl caddycmd.Flags) (int, error) {
	o := mintOptions{
		sub:      fl.String("sub"),
		scopes:   strings.Fields(strings.ReplaceAll(fl.String("scopes"), ",", " ")),
		ttl:      fl.Duration("ttl"),
		kid:      fl.String("kid"),
		issuer:   fl.String("issuer"),
		audience: fl.String("audience"),
		alg:      fl.String("alg"),
	}
	keyFile, secret := fl.String("key"), fl.String("secret")
	switch {
	case (keyFile == "") == (secret == ""):
		return caddy.ExitCodeFailedStartup, errors.New("give exactly one of --key and --secret")
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("reading key: %w", err)
		}
		if o.key, err = parsePrivateKeyPEM(data); err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("parsing key %s: %w", keyFile, err)
		}
	default:
		s := caddy.NewReplacer().ReplaceKnown(secret, "")
		if s == "" {
			return caddy.ExitCodeFailedStartup, errors.New("the secret is empty")
		}
		o.key = []byte(s)
	}
	token, err := mint(o)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Println(token)
	return caddy.ExitCodeSuccess, nil
}

// mintOptions describe a token to mint.
type mintOptions struct {
	sub      string
	scopes   []string
	ttl      time.Duration
	key      any // []byte (HMAC) or a crypto.Signer
	kid      string
	issuer   string
	audience string
	alg      string
}

// mint signs a token.
func mint(o mintOptions) (string, error) {
	if o.sub == "" {
		return "", errors.New("--sub is required")
	}
	if o.ttl <= 0 {
		return "", errors.New("--ttl must be positive")
	}
	alg := o.alg
	if alg == "" {
		alg = defaultSigningAlg(o.key)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil || alg == "none" {
		return "", fmt.Errorf("unknown algorithm %q", alg)
	}
	t := time.Now()
	claims := jwt.MapClaims{
		"sub": o.sub,
		"iat": t.Unix(),
		"nbf": t.Unix(),
		"exp": t.Add(o.ttl).Unix(),
	}
	if len(o.scopes) > 0 {
		claims["scope"] = strings.Join(o.scopes, " ")
	}
	if o.issuer != "" {
		claims["iss"] = o.issuer
	}
	if o.audience != "" {
		claims["aud"] = o.audience
	}
	tok := jwt.NewWithClaims(method, claims)
	if o.kid != "" {
		tok.Header["kid"] = o.kid
	}
	s, err := tok.SignedString(o.key)
	if err != nil {
		return "", fmt.Errorf("signing with %s: %w", alg, err)
	}
	return s, nil
}

func defaultSigningAlg(key any) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "RS256"
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
		return "ES256"
	case ed25519.PrivateKey:
		return "EdDSA"
	}
	return "HS256"
}
