package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Key is one verification key, bound to exactly one algorithm.
type Key struct {
	ID        string // kid; may be empty when it is an issuer's only key
	Algorithm string // RS256, ES256, EdDSA, HS256, …
	Public    crypto.PublicKey
	Secret    []byte // HMAC only, and only when configured explicitly
}

// Limits on keys.
const (
	maxKidLen  = 256
	minRSABits = 2048
)

var errKey = errors.New("auth: unusable key")

// checkKey reports whether k is usable for its algorithm: the right type,
// RSA at least 2048 bits, an HMAC secret at least as long as the hash.
func checkKey(k Key) error {
	if len(k.ID) > maxKidLen {
		return fmt.Errorf("%w: kid longer than %d", errKey, maxKidLen)
	}
	switch k.Algorithm {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		pub, ok := k.Public.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: %s needs an RSA key of at least %d bits", errKey, k.Algorithm, minRSABits)
		}
	case "ES256", "ES384", "ES512":
		pub, ok := k.Public.(*ecdsa.PublicKey)
		if !ok || pub.Curve != curveFor(k.Algorithm) {
			return fmt.Errorf("%w: %s needs an EC key on its curve", errKey, k.Algorithm)
		}
	case "EdDSA":
		if _, ok := k.Public.(ed25519.PublicKey); !ok {
			return fmt.Errorf("%w: EdDSA needs an Ed25519 key", errKey)
		}
	case "HS256", "HS384", "HS512":
		if k.Public != nil || len(k.Secret)*8 < hashBits(k.Algorithm) {
			return fmt.Errorf("%w: %s needs an explicit secret of at least %d bits", errKey, k.Algorithm, hashBits(k.Algorithm))
		}
	default:
		return fmt.Errorf("%w: algorithm %q", errKey, k.Algorithm)
	}
	return nil
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	}
	return elliptic.P521()
}

func hashBits(alg string) int {
	switch alg {
	case "HS384":
		return 384
	case "HS512":
		return 512
	}
	return 256
}

// jwk is one JSON Web Key as published in a JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JWKS document. A key that cannot be used (unknown type,
// `use: enc`, RSA under 2048 bits, a bad encoding) is skipped and counted,
// never fatal for the set; only a document that is not a JWKS is an error.
// Symmetric keys are never taken from a JWKS.
func ParseJWKS(doc []byte) (keys []Key, skipped int, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil || set.Keys == nil {
		return nil, 0, fmt.Errorf("auth: not a JWKS document")
	}
	for _, raw := range set.Keys {
		var j jwk
		if json.Unmarshal(raw, &j) != nil {
			skipped++
			continue
		}
		k, err := j.key()
		if err != nil || checkKey(k) != nil {
			skipped++
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

func (j jwk) key() (Key, error) {
	if j.Use != "" && j.Use != "sig" {
		return Key{}, errKey
	}
	k := Key{ID: j.Kid, Algorithm: j.Alg}
	switch j.Kty {
	case "RSA":
		n, e := b64int(j.N), b64int(j.E)
		if n == nil || e == nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
			return Key{}, errKey
		}
		k.Public = &rsa.PublicKey{N: n, E: int(e.Int64())}
		k.Algorithm = or(k.Algorithm, "RS256")
	case "EC":
		alg := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[j.Crv]
		if alg == "" || (k.Algorithm != "" && k.Algorithm != alg) {
			return Key{}, errKey
		}
		curve := curveFor(alg)
		size := (curve.Params().BitSize + 7) / 8
		x, errX := base64.RawURLEncoding.Strict().DecodeString(j.X)
		y, errY := base64.RawURLEncoding.Strict().DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return Key{}, errKey
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...)) // checks the point is on the curve
		if err != nil {
			return Key{}, errKey
		}
		k.Public, k.Algorithm = pub, alg
	case "OKP":
		x, err := base64.RawURLEncoding.Strict().DecodeString(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return Key{}, errKey
		}
		k.Public, k.Algorithm = ed25519.PublicKey(x), or(k.Algorithm, "EdDSA")
	default:
		return Key{}, errKey
	}
	return k, nil
}

func b64int(s string) *big.Int {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
