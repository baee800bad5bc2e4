package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"hash"
	"strconv"
)

// settingsHash hashes every setting that affects a validation result, so a
// cached result is never reused under other settings (a cache key missing a
// setting let tokens through in other systems).
func settingsHash(v *Validator) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "authnode-validation-v1|max=%d|", v.maxBytes)
	for _, is := range v.Issuers() {
		field(h, "iss", is.Issuer)
		list(h, "aud", is.Audiences)
		list(h, "algs", is.Algorithms)
		list(h, "types", is.Types)
		field(h, "leeway", is.Leeway.String())
		field(h, "lifetime", is.MaxLifetime.String())
		for _, k := range is.Keys {
			field(h, "kid", k.ID)
			field(h, "alg", k.Algorithm)
			der, _ := x509.MarshalPKIXPublicKey(k.Public)
			sum := sha256.Sum256(append(der, k.Secret...))
			field(h, "key", string(sum[:]))
		}
		if is.JWKS != nil {
			field(h, "jwks", is.JWKS.cfg.URL+"|"+is.JWKS.cfg.File)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// list writes a list as its length and then each item as a field, so
// ["a","b"] and ["a,b"] hash differently.
func list(h hash.Hash, name string, items []string) {
	field(h, name, strconv.Itoa(len(items)))
	for _, it := range items {
		field(h, name+"[]", it)
	}
}

// field writes one length-prefixed name=value pair, so no two different
// settings hash alike.
func field(h hash.Hash, name, value string) {
	fmt.Fprintf(h, "%s=%d:%s|", name, len(value), value)
}
